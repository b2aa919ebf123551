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
	objectAPI
}

// bucketFound is what exists of the bucket.
type bucketFound struct {
	exists, tagged, publicBlocked, encrypted bool
}

// findBucket reads the bucket and its settings. A bucket of that name owned
// by another account, or untagged in ours, is an error: we never adopt it,
// unless it is the one this machine created and did not tag (pending).
func findBucket(ctx context.Context, api bucketAPI, n names, pending string) (*bucketFound, error) {
	_, err := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(n.Bucket), ExpectedBucketOwner: aws.String(n.Account)})
	return findBucketFrom(ctx, api, n, pending, err)
}

// findBucketFrom is findBucket once HeadBucket has answered (head: its
// error, nil when the bucket is there): openStack's resolveBucket asked.
func findBucketFrom(ctx context.Context, api bucketAPI, n names, pending string, head error) (*bucketFound, error) {
	b := &bucketFound{}
	err := head
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
	b.tagged = tags != nil && owned(s3TagMap(tags.TagSet), n.Stack)
	if !b.tagged && (pending != n.Bucket || (tags != nil && len(tags.TagSet) > 0)) {
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
func (b *bucketFound) plan(n names) []planStep {
	if !b.exists {
		return []planStep{step(kindBucket, n.Bucket, "create S3 bucket %s (public access blocked, AES256 default encryption)", n.Bucket)}
	}
	var p []planStep
	if !b.publicBlocked {
		p = append(p, step(kindBucket, n.Bucket, "block public access to S3 bucket %s", n.Bucket))
	}
	if !b.encrypted {
		p = append(p, step(kindBucket, n.Bucket, "set default encryption on S3 bucket %s", n.Bucket))
	}
	return p
}

// bucketWait bounds retries of S3's eventual consistency: settings calls
// right after CreateBucket can answer NoSuchBucket or OperationAborted.
const bucketWait = time.Minute

// isBucketPropagation matches those answers.
func isBucketPropagation(err error) bool { return hasCode(err, "NoSuchBucket", "OperationAborted") }

// ensureBucketInput is what ensureBucket needs besides the API.
type ensureBucketInput struct {
	names names
	tags  map[string]string
	// pending records (name) and clears ("") the bucket this machine is
	// creating, so that a half-created bucket (made, not yet tagged) is
	// known as the stack's by the next up or down here, and by no one else.
	pending func(name string) error
	log     Log
}

// ensureBucket creates the bucket and sets tags, public access block and
// default encryption explicitly (some S3 implementations do not default it).
func ensureBucket(ctx context.Context, api bucketAPI, b *bucketFound, in ensureBucketInput) error {
	n := in.names
	if !b.exists || !b.tagged {
		if err := createBucket(ctx, api, b, in); err != nil {
			return err
		}
	}
	settle := func(fn func() error) error { return retryOn(ctx, bucketWait, isBucketPropagation, nil, fn) }
	if !b.publicBlocked {
		err := settle(func() error {
			_, err := api.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
				Bucket: aws.String(n.Bucket),
				PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
					BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true),
					IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
				},
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("blocking public access to S3 bucket %s: %w", n.Bucket, err)
		}
	}
	if !b.encrypted {
		err := settle(func() error {
			_, err := api.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
				Bucket: aws.String(n.Bucket),
				ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
					Rules: []s3types.ServerSideEncryptionRule{{
						ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
					}},
				},
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("setting default encryption of S3 bucket %s: %w", n.Bucket, err)
		}
	}
	return nil
}

// createBucket creates the bucket with its tags (in the same call where S3
// takes them there; a tagging call follows for the S3s that drop them) and,
// for a half-created bucket of this stack, finishes the job. Creating and
// tagging are not split by an interrupt, and the pending mark covers a
// crash between them.
func createBucket(ctx context.Context, api bucketAPI, b *bucketFound, in ensureBucketInput) error {
	n := in.names
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), waitsOf(ctx).nameBusy+bucketWait)
	defer cancel()
	if !b.exists {
		if err := in.pending(n.Bucket); err != nil {
			return err
		}
		in.log.Step("creating S3 bucket %s", n.Bucket)
		if err := createBucketCall(ctx, api, n, in.tags, in.log); err != nil {
			return err
		}
	} else {
		in.log.Step("tagging S3 bucket %s, which an interrupted run of this stack created", n.Bucket)
	}
	err := retryOn(ctx, bucketWait, isBucketPropagation, nil, func() error {
		_, err := api.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{
			Bucket: aws.String(n.Bucket), Tagging: &s3types.Tagging{TagSet: s3Tags(in.tags)},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("tagging S3 bucket %s: %w", n.Bucket, err)
	}
	return in.pending("")
}

// createBucketCall is CreateBucket, waiting while S3 still holds the name of
// a bucket deleted a moment ago.
func createBucketCall(ctx context.Context, api bucketAPI, n names, tags map[string]string, log Log) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(n.Bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{Tags: s3Tags(tags)}}
	if n.Region != "us-east-1" { // us-east-1 rejects its own name as a constraint
		in.CreateBucketConfiguration.LocationConstraint = s3types.BucketLocationConstraint(n.Region)
	}
	if n.GlobalBucket != "" {
		in.BucketNamespace = s3types.BucketNamespaceAccountRegional
	}
	warned, nameBusyWait := false, waitsOf(ctx).nameBusy
	err := retryOn(ctx, nameBusyWait, func(err error) bool { return hasCode(err, "OperationAborted") }, func(error) {
		if !warned {
			log.Info("S3 still holds the name %s for a bucket deleted a moment ago; waiting up to %s for it", n.Bucket, nameBusyWait)
			warned = true
		}
	}, func() error {
		_, err := api.CreateBucket(ctx, in)
		return err
	})
	switch {
	case hasCode(err, "BucketAlreadyOwnedByYou"):
		// Our own CreateBucket retried after a dropped connection, or a
		// concurrent run of this stack: the name carries our account and
		// stack, and it did not exist a moment ago, so tag it.
		return nil
	case hasCode(err, "OperationAborted"):
		return fmt.Errorf("S3 still holds the name %s after %s (a bucket of that name was deleted a moment ago, "+
			"and S3 frees names with a delay): try again in a few minutes: %w", n.Bucket, nameBusyWait, err)
	case hasCode(err, "BucketAlreadyExists"):
		return fmt.Errorf("S3 bucket name %s is taken by another account: choose another --stack", n.Bucket)
	case err != nil:
		return fmt.Errorf("creating S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

// bucketInventory is the bucket's status row when the stack owns it (or
// this machine created it and has not tagged it yet: pending).
func bucketInventory(ctx context.Context, api bucketAPI, n names, pending string) ([]resource, error) {
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	switch {
	case hasCode(err, "NoSuchTagSet") && pending == n.Bucket:
		return []resource{{Kind: kindBucket, ID: n.Bucket, Name: n.Bucket, State: stateUntagged}}, nil
	case hasCode(err, "NoSuchBucket", "NotFound"):
		return nil, nil
	case hasCode(err, "NoSuchTagSet"):
		return []resource{{Kind: kindBucket, ID: n.Bucket, Name: n.Bucket, State: stateForeign}}, nil
	case hasCode(err, "AccessDenied", "Forbidden"):
		return nil, fmt.Errorf("reading S3 bucket %s: access denied reading its tags (another account's bucket?): %w", n.Bucket, err)
	case err != nil:
		return nil, fmt.Errorf("reading S3 bucket %s: %w", n.Bucket, err)
	case owned(s3TagMap(tags.TagSet), n.Stack):
		return []resource{{Kind: kindBucket, ID: n.Bucket, Name: n.Bucket, State: stateExists}}, nil
	}
	return []resource{{Kind: kindBucket, ID: n.Bucket, Name: n.Bucket, State: stateForeign}}, nil
}

// listBuckets adds to set the stacks of buckets named
// mlstack-*-<account>-<region>[-an] in the wanted regions, by their tags.
func listBuckets(ctx context.Context, api bucketAPI, account string, set *stackSet, want map[string]bool) error {
	out, err := api.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("mlstack-")})
	if err != nil {
		return fmt.Errorf("listing S3 buckets: %w", err)
	}
	for _, b := range out.Buckets {
		name := aws.ToString(b.Name)
		region := ""
		for r := range want {
			base := strings.TrimSuffix(name, regionalSuffix)
			if strings.HasPrefix(name, "mlstack-") && strings.HasSuffix(base, "-"+account+"-"+r) {
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
		set.add(region, s3TagMap(tags.TagSet), resource{Kind: kindBucket, ID: name, Name: name, State: stateExists}, nil)
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
// unfinished upload) and deletes it; the inventory found it the stack's
// (tagged, or made by this machine and not tagged yet). NotFound is done.
func deleteBucket(ctx context.Context, api bucketAPI, n names, log Log) error {
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

// resolveBucket settles which of the stack's two possible bucket names is in
// use: a stack made before mlstack used the account-regional namespace keeps
// its bucket under the global name; every other stack uses the regional one.
func resolveBucket(ctx context.Context, api bucketAPI, n names) (names, error) {
	n, _, err := resolveBucketHead(ctx, api, n)
	return n, err
}

// bucketHead is HeadBucket's answer for the resolved name (err nil: the
// bucket is there), when resolveBucketHead asked it.
type bucketHead struct {
	asked bool
	err   error
}

// resolveBucketHead is resolveBucket, with HeadBucket's answer for the
// name it chose, which up's findBucket then need not ask again.
func resolveBucketHead(ctx context.Context, api bucketAPI, n names) (names, bucketHead, error) {
	if n.GlobalBucket == "" {
		return n, bucketHead{}, nil
	}
	head := func(name string) (bool, error, error) {
		_, err := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name), ExpectedBucketOwner: aws.String(n.Account)})
		switch {
		case err == nil:
			return true, nil, nil
		case hasCode(err, "NotFound", "NoSuchBucket", "Forbidden", "AccessDenied", "301", "MovedPermanently", "PermanentRedirect"):
			return false, err, nil // missing, or not ours: not the stack's
		}
		return false, err, fmt.Errorf("checking S3 bucket %s: %w", name, err)
	}
	ok, regional, err := head(n.Bucket)
	if ok || err != nil {
		return n, bucketHead{asked: err == nil, err: regional}, err
	}
	ok, _, err = head(n.GlobalBucket)
	if ok {
		n.Bucket, n.GlobalBucket = n.GlobalBucket, ""
		return n, bucketHead{asked: true}, err
	}
	return n, bucketHead{asked: err == nil, err: regional}, err
}

// bucketUsage is what the bucket holds of artifacts: the objects (latest
// versions) and the bytes of every version, all of which down deletes.
type bucketUsage struct {
	objects int
	bytes   int64
}

// measureBucket counts the artifacts' objects and bytes, a page at a time
// (what else is there, the install lock, can be made again).
func measureBucket(ctx context.Context, api bucketAPI, bucket string) (bucketUsage, error) {
	var u bucketUsage
	p := s3.NewListObjectVersionsPaginator(api, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(artifactPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if hasCode(err, "NoSuchBucket") {
			return u, nil
		}
		if err != nil {
			return u, fmt.Errorf("listing objects of S3 bucket %s: %w", bucket, err)
		}
		for _, v := range page.Versions {
			u.bytes += aws.ToInt64(v.Size)
			if aws.ToBool(v.IsLatest) {
				u.objects++
			}
		}
	}
	return u, nil
}
