package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Tag keys. Tags in AWS are the source of truth for what a stack owns.
const (
	TagStack     = "mlstack:stack"
	TagCreatedAt = "mlstack:created-at"
	TagExpiresAt = "mlstack:expires-at"
	TagVersion   = "mlstack:version"
	TagRegion    = "mlstack:region"
	// tagOwner is the principal that created the stack (an assumed role
	// counts as its role); sweeps act on the caller's own stacks.
	tagOwner = "mlstack:owner"
)

// StackTags are the tags every resource of a stack gets at creation; region
// lets `ls` place the stack's global IAM resources, owner names who made
// it, and a TTL adds the expiry.
func StackTags(stack, region, owner string, now time.Time, ttl time.Duration) map[string]string {
	tags := map[string]string{
		TagStack:     stack,
		TagCreatedAt: now.UTC().Format(time.RFC3339),
		TagVersion:   Version,
		TagRegion:    region,
	}
	if owner != "" {
		tags[tagOwner] = OwnerTagValue(owner)
	}
	if ttl > 0 {
		tags[TagExpiresAt] = now.Add(ttl).UTC().Format(time.RFC3339)
	}
	return tags
}

// ownerTagMax is the longest tag value IAM, S3, SSM and RDS accept.
const ownerTagMax = 256

// ownerHashSep ends the readable part of a mapped owner value. IAM ARNs
// never hold a space (names and paths are printable ASCII without it), so
// a mapped value never equals an ARN that needed no mapping.
const ownerHashSep = " sha256:"

// ownerTagRune reports whether IAM, S3, SSM and RDS accept r in a tag
// value: letters, separators and digits of any script, and _ . : / = + - @
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html).
func ownerTagRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.In(r, unicode.Z) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r)
}

// OwnerTagValue is the mlstack:owner value of a principal's ARN, the same
// on every service. An ARN every service accepts as it is (root, a role,
// most users) is kept as it is, so stacks tagged by earlier versions still
// match. Otherwise (IAM user names may hold ',', paths more; or longer
// than 256 characters) each refused character becomes '_', the result is
// cut to fit, and " sha256:" plus 16 hex digits of the full ARN's SHA-256
// follow: two principals differ in their hash even where their readable
// parts agree. A mapped value maps to itself, so values read back from
// tags can be compared after mapping (SameOwner).
func OwnerTagValue(arn string) string {
	clean := strings.IndexFunc(arn, func(r rune) bool { return !ownerTagRune(r) }) < 0
	if clean && utf8.RuneCountInString(arn) <= ownerTagMax {
		return arn
	}
	sum := sha256.Sum256([]byte(arn))
	suffix := ownerHashSep + hex.EncodeToString(sum[:8])
	readable := []rune(strings.Map(func(r rune) rune {
		if ownerTagRune(r) {
			return r
		}
		return '_'
	}, arn))
	if keep := ownerTagMax - len(suffix); len(readable) > keep {
		readable = readable[:keep]
	}
	return string(readable) + suffix
}

// SameOwner reports whether an mlstack:owner value read from a tag (from
// any version of mlstack) names the principal.
func SameOwner(tagged, principal string) bool {
	return tagged != "" && OwnerTagValue(tagged) == OwnerTagValue(principal)
}

// owned reports whether tags mark a resource as belonging to stack.
func owned(tags map[string]string, stack string) bool {
	return tags[TagStack] == stack
}

func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func EC2Tags(m map[string]string, name string) []ec2types.Tag {
	var out []ec2types.Tag
	if name != "" {
		out = append(out, ec2types.Tag{Key: aws.String("Name"), Value: aws.String(name)})
	}
	for _, k := range SortedKeys(m) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func EC2TagSpec(rt ec2types.ResourceType, m map[string]string, name string) ec2types.TagSpecification {
	return ec2types.TagSpecification{ResourceType: rt, Tags: EC2Tags(m, name)}
}

func IAMTags(m map[string]string) []iamtypes.Tag {
	var out []iamtypes.Tag
	for _, k := range SortedKeys(m) {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func S3Tags(m map[string]string) []s3types.Tag {
	var out []s3types.Tag
	for _, k := range SortedKeys(m) {
		out = append(out, s3types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func EC2TagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func IAMTagMap(tags []iamtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func S3TagMap(tags []s3types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// stackFilter selects a stack's EC2 resources by tag.
func stackFilter(stack string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String("tag:" + TagStack), Values: []string{stack}}
}

// anyStackFilter selects the EC2 resources of every stack.
var anyStackFilter = ec2types.Filter{Name: aws.String("tag-key"), Values: []string{TagStack}}

type ec2TagAPI interface {
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

// RetagEC2 sets one tag on EC2 resources of any kind in a single call; each
// resource file says which of its ids carry the stack's tags.
func RetagEC2(ctx context.Context, api ec2TagAPI, ids []string, key, value string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: EC2Tags(map[string]string{key: value}, "")}); err != nil {
		return fmt.Errorf("moving the expiry of EC2 resources: %w", err)
	}
	return nil
}

// Version is mlstack's, stamped into the mlstack:version tag.
const Version = "0.1.0"
