package cloud

// The EC2 key pair mlstack-<stack>: the public half of an ed25519 key
// generated on this machine (the private key never leaves it).

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

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

// KeyPairFound is what exists of the key pair.
type KeyPairFound struct {
	ID string // "" when missing
}

// FindKeyPair reads the stack's key pair. One that holds another public
// key than authorized (this machine's) is drift: instances launched with it
// would let in whoever holds that key.
func FindKeyPair(ctx context.Context, api keyPairAPI, n Names, authorized string) (*KeyPairFound, error) {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{n.KeyPair}})
	if HasCode(err, "InvalidKeyPair.NotFound") {
		return &KeyPairFound{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading key pair %s: %w", n.KeyPair, err)
	}
	if len(out.KeyPairs) == 0 {
		return &KeyPairFound{}, nil
	}
	kp := out.KeyPairs[0]
	if !owned(EC2TagMap(kp.Tags), n.Stack) {
		return nil, &NotOwnedError{Kind: "key pair", Name: n.KeyPair, Stack: n.Stack}
	}
	if fp := aws.ToString(kp.KeyFingerprint); authorized != "" && fp != "" && !slices.Contains(KeyFingerprints(authorized), fp) {
		return nil, &DriftError{Kind: "key pair", Name: n.KeyPair,
			What: "holds another public key (fingerprint " + fp + ") than this machine's SSH key",
			Fix:  fmt.Sprintf("delete it (`aws ec2 delete-key-pair --key-name %s --region %s`) and run up again, which imports this machine's key", n.KeyPair, n.Region)}
	}
	return &KeyPairFound{ID: aws.ToString(kp.KeyPairId)}, nil
}

// KeyFingerprints are the forms EC2 may report for an imported public key:
// AWS gives ED25519 keys OpenSSH's SHA-256 in base64 (ssh-keygen -l), moto
// the SHA-256 of the DER key in hex pairs.
func KeyFingerprints(authorized string) []string {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	if err != nil {
		return nil
	}
	wire := sha256.Sum256(pk.Marshal())
	out := []string{
		base64.StdEncoding.EncodeToString(wire[:]), base64.RawStdEncoding.EncodeToString(wire[:]),
		ssh.FingerprintSHA256(pk), HexPairs(wire[:]),
	}
	if ck, ok := pk.(ssh.CryptoPublicKey); ok {
		if der, err := x509.MarshalPKIXPublicKey(ck.CryptoPublicKey()); err == nil {
			sum := sha256.Sum256(der)
			out = append(out, HexPairs(sum[:]))
		}
	}
	return out
}

// HexPairs writes b as colon-separated lowercase hex pairs.
func HexPairs(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, ":")
}

// Plan says in words what ensureKeyPair would do.
func (k *KeyPairFound) Plan(n Names) []PlanStep {
	if k.ID == "" {
		return []PlanStep{Step(KindKeyPair, n.KeyPair, "import a locally generated ed25519 key pair %s", n.KeyPair)}
	}
	return nil
}

// EnsureKeyPair imports the stack's public key under the stack's name.
func EnsureKeyPair(ctx context.Context, api keyPairAPI, k *KeyPairFound, n Names, authorized []byte, tags map[string]string, log Log) error {
	if k.ID != "" {
		return nil
	}
	log.Step("importing ed25519 key pair %s", n.KeyPair)
	out, err := api.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName: aws.String(n.KeyPair), PublicKeyMaterial: authorized,
		TagSpecifications: []ec2types.TagSpecification{EC2TagSpec(ec2types.ResourceTypeKeyPair, tags, n.KeyPair)},
	})
	if err != nil && !HasCode(err, "InvalidKeyPair.Duplicate") {
		return fmt.Errorf("importing key pair %s: %w", n.KeyPair, err)
	}
	if out != nil {
		k.ID = aws.ToString(out.KeyPairId)
	}
	return nil
}

// KeyPairInventory is the status row of the stack's key pair: the derived
// name, tagged with the stack (a tag alone on another key pair is not enough).
func KeyPairInventory(ctx context.Context, api keyPairAPI, n Names) ([]Resource, error) {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{n.KeyPair}})
	if HasCode(err, "InvalidKeyPair.NotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading key pair %s: %w", n.KeyPair, err)
	}
	var rows []Resource
	for _, k := range out.KeyPairs {
		r := keyPairRow(k)
		if !owned(EC2TagMap(k.Tags), n.Stack) {
			r.State = StateForeign
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func keyPairRow(k ec2types.KeyPairInfo) Resource {
	return Resource{Kind: KindKeyPair, ID: aws.ToString(k.KeyPairId), Name: aws.ToString(k.KeyName), State: StateExists}
}

// ListKeyPairs adds to set the stacks of every tagged key pair of a region
// that has its stack's name.
func ListKeyPairs(ctx context.Context, api keyPairAPI, region string, set *StackSet) error {
	out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{anyStackFilter}})
	if err != nil {
		return fmt.Errorf("listing key pairs in %s: %w", region, err)
	}
	for _, k := range out.KeyPairs {
		if tags := EC2TagMap(k.Tags); aws.ToString(k.KeyName) == NamesFor(tags[TagStack], "", region).KeyPair {
			set.Add(region, tags, keyPairRow(k), nil)
		}
	}
	return nil
}

// TagIDs are the ids that carry the key pair's tags.
func (k *KeyPairFound) TagIDs() []string {
	if k.ID == "" {
		return nil
	}
	return []string{k.ID}
}

// DeleteKeyPair deletes the stack's key pair, which the inventory found
// tagged with the stack.
func DeleteKeyPair(ctx context.Context, api keyPairAPI, n Names, log Log) error {
	// By name: moto ignores KeyPairId, and the inventory checked the name's tag.
	log.Step("deleting key pair %s", n.KeyPair)
	if _, err := api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(n.KeyPair)}); err != nil && !HasCode(err, "InvalidKeyPair.NotFound") {
		return fmt.Errorf("deleting key pair %s: %w", n.KeyPair, err)
	}
	return nil
}
