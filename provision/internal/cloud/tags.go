package cloud

import (
	"context"
	"fmt"
	"sort"
	"time"

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
		tags[tagOwner] = owner
	}
	if ttl > 0 {
		tags[TagExpiresAt] = now.Add(ttl).UTC().Format(time.RFC3339)
	}
	return tags
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
