package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
)

// keyPairAPI is the part of EC2 the SSH key pair needs.
type keyPairAPI interface {
	DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	ImportKeyPair(context.Context, *ec2.ImportKeyPairInput, ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error)
	DeleteKeyPair(context.Context, *ec2.DeleteKeyPairInput, ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
}

// newSSHKey generates an ed25519 key locally: the private half never leaves
// this machine. It returns the OpenSSH PEM private key and the authorized_keys line.
func newSSHKey(comment string) (privPEM, authorized []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding ed25519 key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding ed25519 public key: %w", err)
	}
	return pem.EncodeToMemory(block), ssh.MarshalAuthorizedKey(sp), nil
}

type keyPairState struct {
	id string // "" when missing
}

func findKeyPair(ctx context.Context, api keyPairAPI, n Names) (*keyPairState, error) {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{n.KeyPair}})
	if hasCode(err, "InvalidKeyPair.NotFound") {
		return &keyPairState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading key pair %s: %w", n.KeyPair, err)
	}
	if len(out.KeyPairs) == 0 {
		return &keyPairState{}, nil
	}
	kp := out.KeyPairs[0]
	if !owned(ec2TagMap(kp.Tags), n.Stack) {
		return nil, &NotOwnedError{Kind: "key pair", Name: n.KeyPair, Stack: n.Stack}
	}
	return &keyPairState{id: aws.ToString(kp.KeyPairId)}, nil
}

// ensureKeyPair imports the stack's public key under the stack's name.
func ensureKeyPair(ctx context.Context, api keyPairAPI, st *keyPairState, n Names, authorized []byte, tags map[string]string, log *progress) error {
	if st.id != "" {
		return nil
	}
	log.step("importing ed25519 key pair %s", n.KeyPair)
	out, err := api.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName: aws.String(n.KeyPair), PublicKeyMaterial: authorized,
		TagSpecifications: []ec2types.TagSpecification{ec2TagSpec(ec2types.ResourceTypeKeyPair, tags, n.KeyPair)},
	})
	if err != nil && !hasCode(err, "InvalidKeyPair.Duplicate") {
		return fmt.Errorf("importing key pair %s: %w", n.KeyPair, err)
	}
	if out != nil {
		st.id = aws.ToString(out.KeyPairId)
	}
	return nil
}

func deleteKeyPair(ctx context.Context, api keyPairAPI, n Names, log *progress) error {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{n.KeyPair}})
	if hasCode(err, "InvalidKeyPair.NotFound") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading key pair %s: %w", n.KeyPair, err)
	}
	for _, kp := range out.KeyPairs {
		if !owned(ec2TagMap(kp.Tags), n.Stack) {
			log.warn("leaving key pair %s alone: it is not tagged %s=%s", n.KeyPair, TagStack, n.Stack)
			continue
		}
		// By name: moto ignores KeyPairId, and the name was just checked.
		log.step("deleting key pair %s", n.KeyPair)
		if _, err := api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: kp.KeyName}); err != nil && !hasCode(err, "InvalidKeyPair.NotFound") {
			return fmt.Errorf("deleting key pair %s: %w", n.KeyPair, err)
		}
	}
	return nil
}
