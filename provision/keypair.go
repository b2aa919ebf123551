package provision

// The EC2 key pair mlstack-<stack>: the public half of an ed25519 key
// generated on this machine (the private key never leaves it).

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// keyPairAPI is the part of EC2 the SSH key pair needs.
type keyPairAPI interface {
	DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	ImportKeyPair(context.Context, *ec2.ImportKeyPairInput, ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error)
	DeleteKeyPair(context.Context, *ec2.DeleteKeyPairInput, ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
}

// keyPairFound is what exists of the key pair.
type keyPairFound struct {
	id string // "" when missing
}

func findKeyPair(ctx context.Context, api keyPairAPI, n names) (*keyPairFound, error) {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{n.KeyPair}})
	if hasCode(err, "InvalidKeyPair.NotFound") {
		return &keyPairFound{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading key pair %s: %w", n.KeyPair, err)
	}
	if len(out.KeyPairs) == 0 {
		return &keyPairFound{}, nil
	}
	kp := out.KeyPairs[0]
	if !owned(ec2TagMap(kp.Tags), n.Stack) {
		return nil, &notOwnedError{Kind: "key pair", Name: n.KeyPair, Stack: n.Stack}
	}
	return &keyPairFound{id: aws.ToString(kp.KeyPairId)}, nil
}

// plan says in words what ensureKeyPair would do.
func (k *keyPairFound) plan(n names) []string {
	if k.id == "" {
		return []string{"import a locally generated ed25519 key pair " + n.KeyPair}
	}
	return nil
}

// ensureKeyPair imports the stack's public key under the stack's name.
func ensureKeyPair(ctx context.Context, api keyPairAPI, k *keyPairFound, n names, authorized []byte, tags map[string]string, log *progress) error {
	if k.id != "" {
		return nil
	}
	log.Step("importing ed25519 key pair %s", n.KeyPair)
	out, err := api.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName: aws.String(n.KeyPair), PublicKeyMaterial: authorized,
		TagSpecifications: []ec2types.TagSpecification{ec2TagSpec(ec2types.ResourceTypeKeyPair, tags, n.KeyPair)},
	})
	if err != nil && !hasCode(err, "InvalidKeyPair.Duplicate") {
		return fmt.Errorf("importing key pair %s: %w", n.KeyPair, err)
	}
	if out != nil {
		k.id = aws.ToString(out.KeyPairId)
	}
	return nil
}

// keyPairInventory is the status rows of the key pairs the stack owns.
func keyPairInventory(ctx context.Context, api keyPairAPI, n names) ([]resource, error) {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{stackFilter(n.Stack)}})
	if err != nil {
		return nil, fmt.Errorf("listing key pairs: %w", err)
	}
	var rows []resource
	for _, k := range out.KeyPairs {
		rows = append(rows, resource{Kind: "key pair", Name: aws.ToString(k.KeyName), State: "exists"})
	}
	return rows, nil
}

// listKeyPairs adds to set the stacks of every tagged key pair of a region.
func listKeyPairs(ctx context.Context, api keyPairAPI, region string, set *stackSet) error {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{anyStackFilter}})
	if err != nil {
		return fmt.Errorf("listing key pairs in %s: %w", region, err)
	}
	for _, k := range out.KeyPairs {
		set.add(region, ec2TagMap(k.Tags), nil)
	}
	return nil
}

// tagIDs are the ids that carry the key pair's tags.
func (k *keyPairFound) tagIDs() []string {
	if k.id == "" {
		return nil
	}
	return []string{k.id}
}

func deleteKeyPair(ctx context.Context, api keyPairAPI, n names, log *progress) error {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{n.KeyPair}})
	if hasCode(err, "InvalidKeyPair.NotFound") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading key pair %s: %w", n.KeyPair, err)
	}
	for _, kp := range out.KeyPairs {
		if !owned(ec2TagMap(kp.Tags), n.Stack) {
			log.Warn("leaving key pair %s alone: it is not tagged %s=%s", n.KeyPair, tagStack, n.Stack)
			continue
		}
		// By name: moto ignores KeyPairId, and the name was just checked.
		log.Step("deleting key pair %s", n.KeyPair)
		if _, err := api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: kp.KeyName}); err != nil && !hasCode(err, "InvalidKeyPair.NotFound") {
			return fmt.Errorf("deleting key pair %s: %w", n.KeyPair, err)
		}
	}
	return nil
}
