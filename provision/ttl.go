package provision

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// retagAPI is what moving a stack's expiry needs, across services.
type retagAPI struct {
	ec2 interface {
		CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	}
	iam interface {
		TagUser(context.Context, *iam.TagUserInput, ...func(*iam.Options)) (*iam.TagUserOutput, error)
		TagRole(context.Context, *iam.TagRoleInput, ...func(*iam.Options)) (*iam.TagRoleOutput, error)
		TagInstanceProfile(context.Context, *iam.TagInstanceProfileInput, ...func(*iam.Options)) (*iam.TagInstanceProfileOutput, error)
	}
	s3 interface {
		GetBucketTagging(context.Context, *s3.GetBucketTaggingInput, ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error)
		PutBucketTagging(context.Context, *s3.PutBucketTaggingInput, ...func(*s3.Options)) (*s3.PutBucketTaggingOutput, error)
	}
}

// extendTTL moves mlstack:expires-at on the resources that existed before
// this up (new ones get it at creation): `up --ttl` on a live stack
// extends its life.
func extendTTL(ctx context.Context, api retagAPI, d *discovery, n Names, expires string, log *progress) error {
	var ids []string
	for _, i := range d.instances {
		ids = append(ids, aws.ToString(i.InstanceId))
		for _, b := range i.BlockDeviceMappings {
			if b.Ebs != nil && b.Ebs.VolumeId != nil {
				ids = append(ids, aws.ToString(b.Ebs.VolumeId))
			}
		}
	}
	if d.sg.id != "" {
		ids = append(ids, d.sg.id)
	}
	if d.keyPair.id != "" {
		ids = append(ids, d.keyPair.id)
	}
	log.step("setting %s=%s on the stack's resources", TagExpiresAt, expires)
	tag := map[string]string{TagExpiresAt: expires}
	if len(ids) > 0 {
		if _, err := api.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: ec2Tags(tag, "")}); err != nil {
			return fmt.Errorf("moving the expiry of EC2 resources: %w", err)
		}
	}
	itag := []iamtypes.Tag{{Key: aws.String(TagExpiresAt), Value: aws.String(expires)}}
	if d.user.exists {
		if _, err := api.iam.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(n.User), Tags: itag}); err != nil {
			return fmt.Errorf("moving the expiry of IAM user %s: %w", n.User, err)
		}
	}
	if d.role.roleExists {
		if _, err := api.iam.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(n.Role), Tags: itag}); err != nil {
			return fmt.Errorf("moving the expiry of IAM role %s: %w", n.Role, err)
		}
	}
	if d.role.profileExists {
		if _, err := api.iam.TagInstanceProfile(ctx, &iam.TagInstanceProfileInput{InstanceProfileName: aws.String(n.Profile), Tags: itag}); err != nil {
			return fmt.Errorf("moving the expiry of instance profile %s: %w", n.Profile, err)
		}
	}
	if d.bucket.exists {
		cur, err := api.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
		if err != nil {
			return fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
		}
		m := s3TagMap(cur.TagSet)
		m[TagExpiresAt] = expires
		if _, err := api.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(n.Bucket), Tagging: &s3types.Tagging{TagSet: s3Tags(m)}}); err != nil {
			return fmt.Errorf("moving the expiry of S3 bucket %s: %w", n.Bucket, err)
		}
	}
	return nil
}
