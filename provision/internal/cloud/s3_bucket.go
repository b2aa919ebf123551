package cloud

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
	ObjectAPI
}

// BucketFound is what exists of the bucket.
type BucketFound struct {
	Exists, tagged, PublicBlocked, Encrypted bool
}

// FindBucket reads the bucket and its settings. A bucket of that name owned
// by another account, or untagged in ours, is an error: we never adopt it,
// unless it is the one this machine created and did not tag (pending).
func FindBucket(ctx context.Context, api bucketAPI, n Names, pending string) (*BucketFound, error) {
	_, err := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(n.Bucket), ExpectedBucketOwner: aws.String(n.Account)})
	return FindBucketFrom(ctx, api, n, pending, err)
}

// FindBucketFrom is findBucket once HeadBucket has answered (head: its
// error, nil when the bucket is there): openStack's resolveBucket asked.
func FindBucketFrom(ctx context.Context, api bucketAPI, n Names, pending string, head error) (*BucketFound, error) {
	b := &BucketFound{}
	err := head
	switch {
	case HasCode(err, "NotFound", "NoSuchBucket"):
		return b, nil
	case HasCode(err, "Forbidden", "AccessDenied", "301", "MovedPermanently", "PermanentRedirect"):
		return nil, fmt.Errorf("S3 bucket %s exists but this identity cannot use it (another account or region owns it): choose another --stack", n.Bucket)
	case err != nil:
		return nil, fmt.Errorf("checking S3 bucket %s: %w", n.Bucket, err)
	}
	b.Exists = true
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	if err != nil && !HasCode(err, "NoSuchTagSet") {
		return nil, fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	b.tagged = tags != nil && owned(S3TagMap(tags.TagSet), n.Stack)
	if !b.tagged && (pending != n.Bucket || (tags != nil && len(tags.TagSet) > 0)) {
		return nil, &NotOwnedError{Kind: "S3 bucket", Name: n.Bucket, Stack: n.Stack}
	}
	if b.PublicBlocked, err = publicAccessBlocked(ctx, api, n.Bucket); err != nil {
		return nil, err
	}
	enc, err := api.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(n.Bucket)})
	switch {
	case HasCode(err, "ServerSideEncryptionConfigurationNotFoundError"):
	case err != nil:
		return nil, fmt.Errorf("reading encryption of S3 bucket %s: %w", n.Bucket, err)
	default:
		b.Encrypted = enc.ServerSideEncryptionConfiguration != nil && len(enc.ServerSideEncryptionConfiguration.Rules) > 0
	}
	return b, nil
}

// publicAccessBlocked reports whether all four public access blocks are on.
func publicAccessBlocked(ctx context.Context, api bucketAPI, bucket string) (bool, error) {
	pab, err := api.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(bucket)})
	switch {
	case HasCode(err, "NoSuchPublicAccessBlockConfiguration"):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading public access block of S3 bucket %s: %w", bucket, err)
	}
	c := pab.PublicAccessBlockConfiguration
	return c != nil && aws.ToBool(c.BlockPublicAcls) && aws.ToBool(c.BlockPublicPolicy) &&
		aws.ToBool(c.IgnorePublicAcls) && aws.ToBool(c.RestrictPublicBuckets), nil
}

// Plan says in words what ensureBucket would do.
func (b *BucketFound) Plan(n Names) []PlanStep {
	if !b.Exists {
		return []PlanStep{Step(KindBucket, n.Bucket, "create S3 bucket %s (public access blocked, AES256 default encryption)", n.Bucket)}
	}
	var p []PlanStep
	if !b.PublicBlocked {
		p = append(p, Step(KindBucket, n.Bucket, "block public access to S3 bucket %s", n.Bucket))
	}
	if !b.Encrypted {
		p = append(p, Step(KindBucket, n.Bucket, "set default encryption on S3 bucket %s", n.Bucket))
	}
	return p
}

// bucketWait bounds retries of S3's eventual consistency: settings calls
// right after CreateBucket can answer NoSuchBucket or OperationAborted.
const bucketWait = time.Minute

// isBucketPropagation matches those answers.
func isBucketPropagation(err error) bool { return HasCode(err, "NoSuchBucket", "OperationAborted") }

// EnsureBucketInput is what ensureBucket needs besides the API.
type EnsureBucketInput struct {
	Names Names
	Tags  map[string]string
	// Pending records (name) and clears ("") the bucket this machine is
	// creating, so that a half-created bucket (made, not yet tagged) is
	// known as the stack's by the next up or down here, and by no one else.
	Pending func(name string) error
	// Renamed is told the names when S3 refuses the account-regional
	// namespace and the bucket is made under its global name instead, before
	// it is: what was derived from the name must follow (nil: nothing does).
	Renamed func(Names) error
	Log     Log
}

// EnsureBucket creates the bucket and sets tags, public access block and
// default encryption explicitly (some S3 implementations do not default it).
func EnsureBucket(ctx context.Context, api bucketAPI, b *BucketFound, in EnsureBucketInput) error {
	if !b.Exists || !b.tagged {
		if err := createBucket(ctx, api, b, &in); err != nil {
			return err
		}
	}
	n := in.Names // the global name, where S3 refused the regional one
	settle := func(fn func() error) error { return RetryOn(ctx, bucketWait, isBucketPropagation, nil, fn) }
	if !b.PublicBlocked {
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
	if !b.Encrypted {
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
func createBucket(ctx context.Context, api bucketAPI, b *BucketFound, in *EnsureBucketInput) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), WaitsOf(ctx).NameBusy+bucketWait)
	defer cancel()
	if !b.Exists {
		if err := createInNamespace(ctx, api, in); err != nil {
			return err
		}
	} else {
		in.Log.Step("tagging S3 bucket %s, which an interrupted run of this stack created", in.Names.Bucket)
	}
	n := in.Names
	err := RetryOn(ctx, bucketWait, isBucketPropagation, nil, func() error {
		_, err := api.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{
			Bucket: aws.String(n.Bucket), Tagging: &s3types.Tagging{TagSet: S3Tags(in.Tags)},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("tagging S3 bucket %s: %w", n.Bucket, err)
	}
	return in.Pending("")
}

// createInNamespace creates the bucket under its name in the account-
// regional namespace and, where S3 refuses that namespace, under its global
// name (in.Names follows, and in.Renamed is told first).
func createInNamespace(ctx context.Context, api bucketAPI, in *EnsureBucketInput) error {
	n := in.Names
	if err := in.Pending(n.Bucket); err != nil {
		return err
	}
	in.Log.Step("creating S3 bucket %s", n.Bucket)
	err := createBucketCall(ctx, api, n, in.Tags, in.Log)
	if n.GlobalBucket == "" || !isNamespaceRefusal(err) {
		return err
	}
	n.Bucket, n.GlobalBucket = n.GlobalBucket, ""
	in.Log.Info("S3 refuses the account-regional bucket namespace here (%s): creating the bucket as %s in the global namespace", ErrorCode(err), n.Bucket)
	if in.Renamed != nil {
		if err := in.Renamed(n); err != nil {
			return err
		}
	}
	in.Names = n
	if err := in.Pending(n.Bucket); err != nil {
		return err
	}
	return createBucketCall(ctx, api, n, in.Tags, in.Log)
}

// isNamespaceRefusal matches S3's refusal of the x-amz-bucket-namespace
// header where it lacks the account-regional namespace (a new region, a
// partition without it): NotImplemented, S3's answer to a header whose
// function it does not implement, or a request error about the namespace.
func isNamespaceRefusal(err error) bool {
	return HasCode(err, "NotImplemented") ||
		HasCode(err, "InvalidRequest", "InvalidArgument") && strings.Contains(strings.ToLower(ErrorMessage(err)), "namespace")
}

// createBucketCall is CreateBucket, waiting while S3 still holds the name of
// a bucket deleted a moment ago.
func createBucketCall(ctx context.Context, api bucketAPI, n Names, tags map[string]string, log Log) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(n.Bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{Tags: S3Tags(tags)}}
	if n.Region != "us-east-1" { // us-east-1 rejects its own name as a constraint
		in.CreateBucketConfiguration.LocationConstraint = s3types.BucketLocationConstraint(n.Region)
	}
	if n.GlobalBucket != "" {
		in.BucketNamespace = s3types.BucketNamespaceAccountRegional
	}
	warned, nameBusyWait := false, WaitsOf(ctx).NameBusy
	err := RetryOn(ctx, nameBusyWait, func(err error) bool { return HasCode(err, "OperationAborted") }, func(error) {
		if !warned {
			log.Info("S3 still holds the name %s for a bucket deleted a moment ago; waiting up to %s for it", n.Bucket, nameBusyWait)
			warned = true
		}
	}, func() error {
		_, err := api.CreateBucket(ctx, in)
		if HasCode(err, "AccessDenied") && len(in.CreateBucketConfiguration.Tags) > 0 {
			// Tags at creation need s3:TagResource too; without it S3 refuses
			// the create itself. The tagging call that follows sets them.
			log.Info("creating S3 bucket %s without its tags (the caller may not s3:TagResource at creation); tagging it next", n.Bucket)
			in.CreateBucketConfiguration.Tags = nil
			_, err = api.CreateBucket(ctx, in)
		}
		return err
	})
	switch {
	case HasCode(err, "BucketAlreadyOwnedByYou"):
		// Our own CreateBucket retried after a dropped connection, or a
		// concurrent run of this stack: the name carries our account and
		// stack, and it did not exist a moment ago, so tag it.
		return nil
	case HasCode(err, "OperationAborted"):
		return fmt.Errorf("S3 still holds the name %s after %s (a bucket of that name was deleted a moment ago, "+
			"and S3 frees names with a delay): try again in a few minutes: %w", n.Bucket, nameBusyWait, err)
	case HasCode(err, "BucketAlreadyExists"):
		return fmt.Errorf("S3 bucket name %s is taken by another account: choose another --stack", n.Bucket)
	case err != nil:
		return fmt.Errorf("creating S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

// BucketInventory is the bucket's status row when the stack owns it (or
// this machine created it and has not tagged it yet: pending).
func BucketInventory(ctx context.Context, api bucketAPI, n Names, pending string) ([]Resource, error) {
	tags, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	switch {
	case HasCode(err, "NoSuchTagSet") && pending == n.Bucket:
		return []Resource{{Kind: KindBucket, ID: n.Bucket, Name: n.Bucket, State: stateUntagged}}, nil
	case HasCode(err, "NoSuchBucket", "NotFound"):
		return nil, nil
	case HasCode(err, "NoSuchTagSet"):
		return []Resource{{Kind: KindBucket, ID: n.Bucket, Name: n.Bucket, State: StateForeign}}, nil
	case HasCode(err, "AccessDenied", "Forbidden"):
		return nil, fmt.Errorf("reading S3 bucket %s: access denied reading its tags (another account's bucket?): %w", n.Bucket, err)
	case err != nil:
		return nil, fmt.Errorf("reading S3 bucket %s: %w", n.Bucket, err)
	case owned(S3TagMap(tags.TagSet), n.Stack):
		return []Resource{{Kind: KindBucket, ID: n.Bucket, Name: n.Bucket, State: StateExists}}, nil
	}
	return []Resource{{Kind: KindBucket, ID: n.Bucket, Name: n.Bucket, State: StateForeign}}, nil
}

// ListBuckets adds to set the stacks of buckets named
// mlstack-*-<account>-<region>[-an] in the wanted regions, by their tags.
func ListBuckets(ctx context.Context, api bucketAPI, account string, set *StackSet, want map[string]bool) error {
	p := s3.NewListBucketsPaginator(api, &s3.ListBucketsInput{Prefix: aws.String("mlstack-")})
	buckets, err := AllPages(ctx, p.HasMorePages, p.NextPage, func(o *s3.ListBucketsOutput) []s3types.Bucket { return o.Buckets })
	if err != nil {
		return fmt.Errorf("listing S3 buckets: %w", err)
	}
	for _, b := range buckets {
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
		if HasCode(err, "NoSuchTagSet", "NoSuchBucket") {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading tags of S3 bucket %s: %w", name, err)
		}
		set.Add(region, S3TagMap(tags.TagSet), Resource{Kind: KindBucket, ID: name, Name: name, State: StateExists}, nil)
	}
	return nil
}

// RetagBucket moves the bucket's expiry, keeping its other tags.
func RetagBucket(ctx context.Context, api bucketAPI, n Names, expires string) error {
	cur, err := api.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(n.Bucket)})
	if err != nil {
		return fmt.Errorf("reading tags of S3 bucket %s: %w", n.Bucket, err)
	}
	m := S3TagMap(cur.TagSet)
	m[TagExpiresAt] = expires
	if _, err := api.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(n.Bucket), Tagging: &s3types.Tagging{TagSet: S3Tags(m)}}); err != nil {
		return fmt.Errorf("moving the expiry of S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

// DeleteBucket empties the bucket (every version, delete marker and
// unfinished upload) and deletes it; the inventory found it the stack's
// (tagged, or made by this machine and not tagged yet). NotFound is done.
func DeleteBucket(ctx context.Context, api bucketAPI, n Names, log Log) error {
	log.Step("emptying and deleting S3 bucket %s", n.Bucket)
	if err := emptyBucket(ctx, api, n.Bucket); err != nil {
		return err
	}
	if err := abortUploads(ctx, api, n.Bucket); err != nil {
		return err
	}
	if _, err := api.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(n.Bucket)}); err != nil && !HasCode(err, "NoSuchBucket") {
		return fmt.Errorf("deleting S3 bucket %s: %w", n.Bucket, err)
	}
	return nil
}

// emptyBucket deletes every object version and delete marker, a page at a time.
func emptyBucket(ctx context.Context, api bucketAPI, bucket string) error {
	p := s3.NewListObjectVersionsPaginator(api, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if HasCode(err, "NoSuchBucket") {
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
	p := s3.NewListMultipartUploadsPaginator(api, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	ups, err := AllPages(ctx, p.HasMorePages, p.NextPage, func(o *s3.ListMultipartUploadsOutput) []s3types.MultipartUpload { return o.Uploads })
	if HasCode(err, "NoSuchBucket") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing unfinished uploads of S3 bucket %s: %w", bucket, err)
	}
	for _, u := range ups {
		if _, err := api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil && !HasCode(err, "NoSuchUpload") {
			return fmt.Errorf("aborting upload %s in S3 bucket %s: %w", aws.ToString(u.Key), bucket, err)
		}
	}
	return nil
}

// ResolveBucket settles which of the stack's two possible bucket names is in
// use: a stack made before mlstack used the account-regional namespace keeps
// its bucket under the global name; every other stack uses the regional one.
func ResolveBucket(ctx context.Context, api bucketAPI, n Names) (Names, error) {
	n, _, err := ResolveBucketHead(ctx, api, n)
	return n, err
}

// BucketHead is HeadBucket's answer for the resolved name (err nil: the
// bucket is there), when resolveBucketHead asked it.
type BucketHead struct {
	Asked bool
	Err   error
}

// ResolveBucketHead is resolveBucket, with HeadBucket's answer for the
// name it chose, which up's findBucket then need not ask again.
func ResolveBucketHead(ctx context.Context, api bucketAPI, n Names) (Names, BucketHead, error) {
	if n.GlobalBucket == "" {
		return n, BucketHead{}, nil
	}
	head := func(name string) (bool, error, error) {
		_, err := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name), ExpectedBucketOwner: aws.String(n.Account)})
		switch {
		case err == nil:
			return true, nil, nil
		case HasCode(err, "NotFound", "NoSuchBucket", "Forbidden", "AccessDenied", "301", "MovedPermanently", "PermanentRedirect"):
			return false, err, nil // missing, or not ours: not the stack's
		}
		return false, err, fmt.Errorf("checking S3 bucket %s: %w", name, err)
	}
	ok, regional, err := head(n.Bucket)
	if ok || err != nil {
		return n, BucketHead{Asked: err == nil, Err: regional}, err
	}
	ok, _, err = head(n.GlobalBucket)
	if ok {
		n.Bucket, n.GlobalBucket = n.GlobalBucket, ""
		return n, BucketHead{Asked: true}, err
	}
	return n, BucketHead{Asked: err == nil, Err: regional}, err
}

// bucketUsage is what the bucket holds of artifacts: the objects (latest
// versions) and the bytes of every version, all of which down deletes.
type bucketUsage struct {
	Objects int
	Bytes   int64
}

// MeasureBucket counts the artifacts' objects and bytes, a page at a time
// (what else is there, the install lock, can be made again).
func MeasureBucket(ctx context.Context, api bucketAPI, bucket string) (bucketUsage, error) {
	var u bucketUsage
	p := s3.NewListObjectVersionsPaginator(api, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(ArtifactPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if HasCode(err, "NoSuchBucket") {
			return u, nil
		}
		if err != nil {
			return u, fmt.Errorf("listing objects of S3 bucket %s: %w", bucket, err)
		}
		for _, v := range page.Versions {
			u.Bytes += aws.ToInt64(v.Size)
			if aws.ToBool(v.IsLatest) {
				u.Objects++
			}
		}
	}
	return u, nil
}
