package provision

// The artifact bucket: mlstack-<stack>-<account>-<region>, public access
// blocked, default encryption set explicitly, tagged.

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	ListBuckets(context.Context, *s3.ListBucketsInput, ...func(*s3.Options)) (*s3.ListBucketsOutput, error)
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

// bucketFound is what exists of the bucket.
type bucketFound struct {
	exists, publicBlocked, encrypted bool
}

// findBucket reads the bucket and its settings. A bucket of that name owned
// by another account, or untagged in ours, is an error: we never adopt it.
func findBucket(ctx context.Context, api bucketAPI, n names) (*bucketFound, error) {
	b := &bucketFound{}
	_, err := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NotFound", "NoSuchBucket"):
		return b, nil
	case hasCode(err, "Forbidden", "AccessDenied", "301", "MovedPermanently", "PermanentRedirect"):
		return nil, fmt.Errorf("S3 bucket %s exists but this identity cannot use it (another account or region owns it): choose another --stack", n.Bucket)
	case err != nil:
		return nil, fmt.Errorf("checking S3 bucket %s: %w", n.Bucket, err)
	}
	b.exists = true
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	if err != nil && !hasCode(err, "NoSuchTagSet") {
		return nil, fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	if tags == nil || !owned(s3TagMap(tags.TagSet), n.Stack) {
		return nil, &notOwnedError{Kind: "S3 bucket", Name: n.Bucket, Stack: n.Stack}
	}
	if b.publicBlocked, err = publicAccessBlocked(ctx, api, n.Bucket); err != nil {
		return nil, err
	}
	enc, err := api.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "ServerSideEncryptionConfigurationNotFoundError"):
	case err != nil:
		return nil, fmt.Errorf("reading encryption of S3 bucket %s: %w", n.Bucket, err)
	default:
		b.encrypted = enc.ServerSideEncryptionConfiguration != nil && len(enc.ServerSideEncryptionConfiguration.Rules) > 0
	}
	return b, nil
}

// publicAccessBlocked reports whether all four public access blocks are on.
func publicAccessBlocked(ctx context.Context, api bucketAPI, bucket string) (bool, error) {
	pab, err := api.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(bucket)})
	switch {
	case hasCode(err, "NoSuchPublicAccessBlockConfiguration"):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading public access block of S3 bucket %s: %w", bucket, err)
	}
	c := pab.PublicAccessBlockConfiguration
	return c != nil && aws.ToBool(c.BlockPublicAcls) && aws.ToBool(c.BlockPublicPolicy) &&
		aws.ToBool(c.IgnorePublicAcls) && aws.ToBool(c.RestrictPublicBuckets), nil
}

// plan says in words what ensureBucket would do.
func (b *bucketFound) plan(n names) []string {
	if !b.exists {
		return []string{"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)"}
	}
	var p []string
	if !b.publicBlocked {
		p = append(p, "block public access to S3 bucket "+n.Bucket)
	}
	if !b.encrypted {
		p = append(p, "set default encryption on S3 bucket "+n.Bucket)
	}
	return p
}

// ensureBucket creates the bucket and sets tags, public access block and
// default encryption explicitly (some S3 implementations do not default it).
func ensureBucket(ctx context.Context, api bucketAPI, b *bucketFound, n names, region string, tags map[string]string, log *progress) error {
	if !b.exists {
		if err := createBucket(ctx, api, n, region, tags, log); err != nil {
			return err
		}
	}
	if !b.publicBlocked {
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
	if !b.encrypted {
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

// createBucket creates and tags the bucket. The two must not be split by an
// interrupt: an untagged bucket of this name would be refused as foreign later.
func createBucket(ctx context.Context, api bucketAPI, n names, region string, tags map[string]string, log *progress) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	log.Step("creating S3 bucket %s", n.Bucket)
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
	return nil
}

// bucketInventory is the bucket's status row when the stack owns it.
func bucketInventory(ctx context.Context, api bucketAPI, n names) ([]resource, error) {
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NoSuchBucket", "NotFound", "NoSuchTagSet"):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading S3 bucket %s: %w", n.Bucket, err)
	case owned(s3TagMap(tags.TagSet), n.Stack):
		return []resource{{Kind: "S3 bucket", Name: n.Bucket, State: "exists"}}, nil
	}
	return nil, nil
}

// listBuckets adds to set the stacks of buckets named
// mlstack-*-<account>-<region> in the wanted regions, by their tags.
func listBuckets(ctx context.Context, api bucketAPI, account string, set *stackSet, want map[string]bool) error {
	out, err := api.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("mlstack-")})
	if err != nil {
		return fmt.Errorf("listing S3 buckets: %w", err)
	}
	for _, b := range out.Buckets {
		name := aws.ToString(b.Name)
		region := ""
		for r := range want {
			if strings.HasPrefix(name, "mlstack-") && strings.HasSuffix(name, "-"+account+"-"+r) {
				region = r
			}
		}
		if region == "" {
			continue
		}
		tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b.Name}, func(o *s3.Options) { o.Region = region })
		if hasCode(err, "NoSuchTagSet", "NoSuchBucket") {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading tags of S3 bucket %s: %w", name, err)
		}
		set.add(region, s3TagMap(tags.TagSet), nil)
	}
	return nil
}

// retagBucket moves the bucket's expiry, keeping its other tags.
func retagBucket(ctx context.Context, api bucketAPI, n names, expires string) error {
	cur, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	if err != nil {
		return fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	m := s3TagMap(cur.TagSet)
	m[tagExpiresAt] = expires
	if _, err := api.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(n.Bucket), Tagging: &s3types.Tagging{TagSet: s3Tags(m)}}); err != nil {
		return fmt.Errorf("moving the expiry of S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

// deleteBucket empties the bucket (every version, delete marker and
// unfinished upload) and deletes it. NotFound is done.
func deleteBucket(ctx context.Context, api bucketAPI, n names, log *progress) error {
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NoSuchBucket", "NotFound"):
		return nil
	case hasCode(err, "NoSuchTagSet"):
		log.Warn("leaving S3 bucket %s alone: it is not tagged %s=%s", n.Bucket, tagStack, n.Stack)
		return nil
	case hasCode(err, "AccessDenied", "Forbidden"):
		return fmt.Errorf("S3 bucket %s: access denied reading its tags: %w", n.Bucket, err)
	case err != nil:
		return fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	if !owned(s3TagMap(tags.TagSet), n.Stack) {
		log.Warn("leaving S3 bucket %s alone: it is not tagged %s=%s", n.Bucket, tagStack, n.Stack)
		return nil
	}
	log.Step("emptying and deleting S3 bucket %s", n.Bucket)
	if err := emptyBucket(ctx, api, n.Bucket); err != nil {
		return err
	}
	if err := abortUploads(ctx, api, n.Bucket); err != nil {
		return err
	}
	if _, err := api.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(n.Bucket)}); err != nil && !hasCode(err, "NoSuchBucket") {
		return fmt.Errorf("deleting S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

// emptyBucket deletes every object version and delete marker, a page at a time.
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
	return nil
}

// abortUploads aborts unfinished multipart uploads, whose parts also bill.
func abortUploads(ctx context.Context, api bucketAPI, bucket string) error {
	ups, err := api.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if hasCode(err, "NoSuchBucket") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing unfinished uploads of S3 bucket %s: %w", bucket, err)
	}
	for _, u := range ups.Uploads {
		if _, err := api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil && !hasCode(err, "NoSuchUpload") {
			return fmt.Errorf("aborting upload %s in S3 bucket %s: %w", aws.ToString(u.Key), bucket, err)
		}
	}
	return nil
}
