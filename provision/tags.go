package provision

import (
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// stackTags are the tags every resource of a stack gets at creation.
func stackTags(stack string, now time.Time) map[string]string {
	return map[string]string{
		TagStack:     stack,
		TagCreatedAt: now.UTC().Format(time.RFC3339),
		TagVersion:   Version,
	}
}

// withTTL adds the expiry tag when ttl is set; region lets `ls` place the
// stack's global IAM resources.
func withTTL(tags map[string]string, region string, now time.Time, ttl time.Duration) map[string]string {
	tags[TagRegion] = region
	if ttl > 0 {
		tags[TagExpiresAt] = now.Add(ttl).UTC().Format(time.RFC3339)
	}
	return tags
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ec2Tags(m map[string]string, name string) []ec2types.Tag {
	var out []ec2types.Tag
	if name != "" {
		out = append(out, ec2types.Tag{Key: aws.String("Name"), Value: aws.String(name)})
	}
	for _, k := range sortedKeys(m) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func ec2TagSpec(rt ec2types.ResourceType, m map[string]string, name string) ec2types.TagSpecification {
	return ec2types.TagSpecification{ResourceType: rt, Tags: ec2Tags(m, name)}
}

func iamTags(m map[string]string) []iamtypes.Tag {
	var out []iamtypes.Tag
	for _, k := range sortedKeys(m) {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func s3Tags(m map[string]string) []s3types.Tag {
	var out []s3types.Tag
	for _, k := range sortedKeys(m) {
		out = append(out, s3types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func ec2TagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func iamTagMap(tags []iamtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func s3TagMap(tags []s3types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// owned reports whether tags mark a resource as belonging to stack.
func owned(tags map[string]string, stack string) bool {
	return tags[TagStack] == stack
}
