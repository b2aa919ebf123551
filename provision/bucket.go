package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// bucketAPI is the part of S3 the artifact bucket needs.
type bucketAPI interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	CreateBucket(context.Context, *s3.CreateBucketInput, ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	DeleteBucket(context.Context, *s3.DeleteBucketInput, ...func(*s3.Options)) (*s3.DeleteBucketOutput, error)
	GetBucketTagging(context.Context, *s3.GetBucketTaggingInput, ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error)
	PutBucketTagging(context.Context, *s3.PutBucketTaggingInput, ...func(*s3.Options)) (*s3.PutBucketTaggingOutput, error)
	GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error)
	PutPublicAccessBlock(context.Context, *s3.PutPublicAccessBlockInput, ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
	GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	PutBucketEncryption(context.Context, *s3.PutBucketEncryptionInput, ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
	ListObjectVersions(context.Context, *s3.ListObjectVersionsInput, ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

type bucketState struct {
	exists, tagged, publicBlocked, encrypted bool
}

// findBucket reads the bucket and its settings. A bucket of that name owned
// by another account, or untagged in ours, is an error: we never adopt it.
func findBucket(ctx context.Context, api bucketAPI, n Names) (*bucketState, error) {
	st := &bucketState{}
	_, err := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NotFound", "NoSuchBucket"):
		return st, nil
	case hasCode(err, "Forbidden", "AccessDenied", "301", "MovedPermanently", "PermanentRedirect"):
		return nil, fmt.Errorf("S3 bucket %s exists but this identity cannot use it (another account or region owns it): choose another --stack", n.Bucket)
	case err != nil:
		return nil, fmt.Errorf("checking S3 bucket %s: %w", n.Bucket, err)
	}
	st.exists = true
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	if err != nil && !hasCode(err, "NoSuchTagSet") {
		return nil, fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	if tags == nil || !owned(s3TagMap(tags.TagSet), n.Stack) {
		return nil, &NotOwnedError{Kind: "S3 bucket", Name: n.Bucket, Stack: n.Stack}
	}
	st.tagged = true
	pab, err := api.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NoSuchPublicAccessBlockConfiguration"):
	case err != nil:
		return nil, fmt.Errorf("reading public access block of S3 bucket %s: %w", n.Bucket, err)
	default:
		c := pab.PublicAccessBlockConfiguration
		st.publicBlocked = c != nil && aws.ToBool(c.BlockPublicAcls) && aws.ToBool(c.BlockPublicPolicy) &&
			aws.ToBool(c.IgnorePublicAcls) && aws.ToBool(c.RestrictPublicBuckets)
	}
	enc, err := api.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "ServerSideEncryptionConfigurationNotFoundError"):
	case err != nil:
		return nil, fmt.Errorf("reading encryption of S3 bucket %s: %w", n.Bucket, err)
	default:
		st.encrypted = enc.ServerSideEncryptionConfiguration != nil && len(enc.ServerSideEncryptionConfiguration.Rules) > 0
	}
	return st, nil
}

// ensureBucket creates the bucket and sets tags, public access block and
// default encryption explicitly (some S3 implementations do not default it).
func ensureBucket(ctx context.Context, api bucketAPI, st *bucketState, n Names, region string, tags map[string]string, log *progress) error {
	if !st.exists {
		// Creating and tagging must not be split by an interrupt: an
		// untagged bucket of this name would be refused as foreign later.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		ctx := cctx
		log.step("creating S3 bucket %s", n.Bucket)
		in := &s3.CreateBucketInput{Bucket: aws.String(n.Bucket)}
		if region != "us-east-1" { // us-east-1 rejects its own name as a constraint
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
		}
		_, err := api.CreateBucket(ctx, in)
		switch {
		case hasCode(err, "BucketAlreadyOwnedByYou"):
			// Our own CreateBucket retried after a dropped connection, or a
			// concurrent run of this stack: the name carries our account and
			// stack, and it did not exist a moment ago, so tag it.
		case hasCode(err, "BucketAlreadyExists"):
			return fmt.Errorf("S3 bucket name %s is taken by another account: choose another --stack", n.Bucket)
		case err != nil:
			return fmt.Errorf("creating S3 bucket %s: %w", n.Bucket, err)
		}
		_, err = api.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{
			Bucket: aws.String(n.Bucket), Tagging: &s3types.Tagging{TagSet: s3Tags(tags)},
		})
		if err != nil {
			return fmt.Errorf("tagging S3 bucket %s: %w", n.Bucket, err)
		}
	}

	if !st.publicBlocked {
		_, err := api.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
			Bucket: aws.String(n.Bucket),
			PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
				BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true),
				IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("blocking public access to S3 bucket %s: %w", n.Bucket, err)
		}
	}
	if !st.encrypted {
		_, err := api.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
			Bucket: aws.String(n.Bucket),
			ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
				Rules: []s3types.ServerSideEncryptionRule{{
					ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
				}},
			},
		})
		if err != nil {
			return fmt.Errorf("setting default encryption of S3 bucket %s: %w", n.Bucket, err)
		}
	}
	return nil
}

// deleteBucket empties the bucket (every version, delete marker and
// unfinished upload) and deletes it. NotFound is done.
func deleteBucket(ctx context.Context, api bucketAPI, n Names, log *progress) error {
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NoSuchBucket", "NotFound"):
		return nil
	case hasCode(err, "NoSuchTagSet"):
		log.warn("leaving S3 bucket %s alone: it is not tagged %s=%s", n.Bucket, TagStack, n.Stack)
		return nil
	case hasCode(err, "AccessDenied", "Forbidden"):
		return fmt.Errorf("S3 bucket %s: access denied reading its tags: %w", n.Bucket, err)
	case err != nil:
		return fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	if !owned(s3TagMap(tags.TagSet), n.Stack) {
		log.warn("leaving S3 bucket %s alone: it is not tagged %s=%s", n.Bucket, TagStack, n.Stack)
		return nil
	}
	log.step("emptying and deleting S3 bucket %s", n.Bucket)
	if err := emptyBucket(ctx, api, n.Bucket); err != nil {
		return err
	}
	if _, err := api.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(n.Bucket)}); err != nil && !hasCode(err, "NoSuchBucket") {
		return fmt.Errorf("deleting S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

func emptyBucket(ctx context.Context, api bucketAPI, bucket string) error {
	p := s3.NewListObjectVersionsPaginator(api, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if hasCode(err, "NoSuchBucket") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing objects of S3 bucket %s: %w", bucket, err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			continue
		}
		out, err := api.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("deleting objects of S3 bucket %s: %w", bucket, err)
		}
		if len(out.Errors) > 0 {
			var errs []error
			for _, e := range out.Errors {
				errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(e.Key), aws.ToString(e.Code)))
			}
			return fmt.Errorf("deleting objects of S3 bucket %s: %w", bucket, errors.Join(errs...))
		}
	}
	ups, err := api.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil && !hasCode(err, "NoSuchBucket") {
		return fmt.Errorf("listing unfinished uploads of S3 bucket %s: %w", bucket, err)
	}
	if ups != nil {
		for _, u := range ups.Uploads {
			if _, err := api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil && !hasCode(err, "NoSuchUpload") {
				return fmt.Errorf("aborting upload %s in S3 bucket %s: %w", aws.ToString(u.Key), bucket, err)
			}
		}
	}
	return nil
}
