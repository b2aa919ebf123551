package provision

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// bufProgress is a progress writer whose lines the test can read.
func bufProgress() (*progress, *bytes.Buffer) {
	var b bytes.Buffer
	return newProgress(&b), &b
}

var allBlocked = &s3types.PublicAccessBlockConfiguration{
	BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
}

func TestEnsureBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	cases := []struct {
		name     string
		region   string
		seed     func(f *cloudfake.FakeAWS)
		plan     []string
		mutating []string
	}{
		{"new bucket", cloudfake.FakeRegion, nil,
			[]string{"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)"},
			[]string{"S3.CreateBucket", "S3.PutBucketTagging", "S3.PutPublicAccessBlock", "S3.PutBucketEncryption"}},
		{"new bucket in us-east-1", "us-east-1", nil,
			[]string{"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)"},
			[]string{"S3.CreateBucket", "S3.PutBucketTagging", "S3.PutPublicAccessBlock", "S3.PutBucketEncryption"}},
		{"complete", cloudfake.FakeRegion, func(f *cloudfake.FakeAWS) {
			b := f.AddBucket(n.Bucket, tags)
			b.Pab, b.Encrypted = allBlocked, true
		}, nil, nil},
		{"public access not blocked", cloudfake.FakeRegion, func(f *cloudfake.FakeAWS) {
			f.AddBucket(n.Bucket, tags).Encrypted = true
		}, []string{"block public access to S3 bucket " + n.Bucket}, []string{"S3.PutPublicAccessBlock"}},
		{"public access partly blocked", cloudfake.FakeRegion, func(f *cloudfake.FakeAWS) {
			b := f.AddBucket(n.Bucket, tags)
			b.Encrypted = true
			b.Pab = &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true)}
		}, []string{"block public access to S3 bucket " + n.Bucket}, []string{"S3.PutPublicAccessBlock"}},
		{"not encrypted", cloudfake.FakeRegion, func(f *cloudfake.FakeAWS) {
			f.AddBucket(n.Bucket, tags).Pab = allBlocked
		}, []string{"set default encryption on S3 bucket " + n.Bucket}, []string{"S3.PutBucketEncryption"}},
		{"neither", cloudfake.FakeRegion, func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, tags) },
			[]string{"block public access to S3 bucket " + n.Bucket, "set default encryption on S3 bucket " + n.Bucket},
			[]string{"S3.PutPublicAccessBlock", "S3.PutBucketEncryption"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
			f.Region = c.region
			n := cloud.NamesFor("demo", cloudfake.FakeAccount, c.region)
			if c.seed != nil {
				c.seed(f)
			}
			found, err := cloud.FindBucket(ctx, f, n, "")
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, p := range c.plan {
				want = append(want, strings.ReplaceAll(p, cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion).Bucket, n.Bucket))
			}
			if got := texts(found.Plan(n)); !slices.Equal(got, want) {
				t.Errorf("plan %q, want %q", got, want)
			}
			log, _ := bufProgress()
			if err := cloud.EnsureBucket(ctx, f, found, testBucketIn(n, tags, log)); err != nil {
				t.Fatal(err)
			}
			if got := f.Mutating(); !slices.Equal(got, c.mutating) {
				t.Errorf("mutating calls %v, want %v", got, c.mutating)
			}
			again, err := cloud.FindBucket(ctx, f, n, "")
			if err != nil || !again.Exists || !again.PublicBlocked || !again.Encrypted || len(again.Plan(n)) != 0 {
				t.Errorf("after ensure: %+v, %v", again, err)
			}
			f.Mu.Lock()
			defer f.Mu.Unlock()
			if b := f.Buckets[n.Bucket]; b.Region != c.region || b.Tags[cloud.TagStack] != "demo" {
				t.Errorf("bucket %+v", b)
			}
		})
	}
}

func TestCreateBucketRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())

	// Our own bucket, made a moment ago by a retried request: tag it and go on.
	f := cloudfake.NewFakeAWS()
	f.AddBucket(n.Bucket, nil)
	log, _ := bufProgress()
	if err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, testBucketIn(n, tags, log)); err != nil {
		t.Fatalf("BucketAlreadyOwnedByYou: %v", err)
	}
	if f.Buckets[n.Bucket].Tags[cloud.TagStack] != "demo" {
		t.Error("bucket not tagged after BucketAlreadyOwnedByYou")
	}

	// Another account's bucket of that name.
	f = cloudfake.NewFakeAWS()
	f.AddBucket(n.Bucket, nil).Foreign = true
	err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, testBucketIn(n, tags, log))
	if err == nil || !strings.Contains(err.Error(), "is taken by another account: choose another --stack") {
		t.Fatalf("BucketAlreadyExists: %v", err)
	}
	if got := f.Mutating(); !slices.Equal(got, []string{"S3.CreateBucket"}) {
		t.Errorf("mutating calls %v", got)
	}
}

func TestEnsureBucketErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	for _, c := range []struct{ op, want string }{
		{"CreateBucket", "creating S3 bucket"},
		{"PutBucketTagging", "tagging S3 bucket"},
		{"PutPublicAccessBlock", "blocking public access"},
		{"PutBucketEncryption", "setting default encryption"},
	} {
		f := cloudfake.NewFakeAWS()
		f.FailNext(c.op, cloudfake.AwsErr("InternalError"), 1)
		log, _ := bufProgress()
		if err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, testBucketIn(n, tags, log)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
}

// fillBucket puts objects with several versions, delete markers and an
// unfinished upload into a bucket.
func fillBucket(b *cloudfake.FakeBucket, objects int) {
	for i := range objects {
		key := fmt.Sprintf("artifacts/%03d/model.pkl", i)
		b.Versions = append(b.Versions, cloudfake.FakeVersion{Key: key, ID: "v1"}, cloudfake.FakeVersion{Key: key, ID: "v2"})
		if i%3 == 0 {
			b.Versions = append(b.Versions, cloudfake.FakeVersion{Key: key, ID: "dm", Marker: true})
		}
	}
	b.Uploads = append(b.Uploads, cloudfake.FakeUpload{Key: "artifacts/big.bin", ID: "upload-1"})
}

func TestDeleteBucketEmptiesEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f := cloudfake.NewFakeAWS()
	f.PageSize = 4 // versions come four to a page
	b := f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	fillBucket(b, 5) // 10 versions and 2 delete markers
	log, out := bufProgress()
	if err := deleteKind(ctx, f, n, cloud.KindBucket, log); err != nil {
		t.Fatal(err)
	}
	if f.Buckets[n.Bucket] != nil {
		t.Fatal("bucket not deleted")
	}
	if got := f.Count("S3.ListObjectVersions"); got != 3 {
		t.Errorf("ListObjectVersions called %d times, want 3 pages", got)
	}
	want := []string{"S3.DeleteObjects", "S3.DeleteObjects", "S3.DeleteObjects", "S3.AbortMultipartUpload", "S3.DeleteBucket"}
	if got := f.Mutating(); !slices.Equal(got, want) {
		t.Errorf("mutating calls %v, want %v", got, want)
	}
	if !strings.Contains(out.String(), "emptying and deleting S3 bucket "+n.Bucket) {
		t.Errorf("progress:\n%s", out)
	}
}

func TestDeleteBucketCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	ours := func(f *cloudfake.FakeAWS) *cloudfake.FakeBucket {
		return f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	}
	cases := []struct {
		name     string
		seed     func(f *cloudfake.FakeAWS)
		want     string // error text; "" for none
		warn     string // progress text
		mutating []string
		gone     bool
	}{
		{"missing", func(f *cloudfake.FakeAWS) {}, "", "", nil, true},
		{"untagged", func(f *cloudfake.FakeAWS) { fillBucket(f.AddBucket(n.Bucket, nil), 2) }, "", "leaving S3 bucket " + n.Bucket + " alone", nil, false},
		{"another stack's", func(f *cloudfake.FakeAWS) {
			fillBucket(f.AddBucket(n.Bucket, cloudfake.StackTagsFor("other", time.Now())), 2)
		}, "", "leaving S3 bucket", nil, false},
		{"another account's", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil).Foreign = true }, "access denied reading its tags", "", nil, false},
		{"tags unreadable", func(f *cloudfake.FakeAWS) {
			ours(f)
			f.FailNext("GetBucketTagging", cloudfake.AwsErr("InternalError"), 1)
		}, "reading S3 bucket", "", nil, false},
		{"objects refuse deletion", func(f *cloudfake.FakeAWS) {
			b := ours(f)
			fillBucket(b, 2)
			b.DeleteErrs = map[string]string{"artifacts/001/model.pkl": "AccessDenied"}
		}, "artifacts/001/model.pkl: AccessDenied", "", []string{"S3.DeleteObjects"}, false},
		{"DeleteObjects fails", func(f *cloudfake.FakeAWS) {
			fillBucket(ours(f), 1)
			f.FailNext("DeleteObjects", cloudfake.AwsErr("SlowDown"), 1)
		},
			"deleting objects of S3 bucket", "", []string{"S3.DeleteObjects"}, false},
		{"upload already gone", func(f *cloudfake.FakeAWS) {
			fillBucket(ours(f), 1)
			f.FailNext("AbortMultipartUpload", cloudfake.AwsErr("NoSuchUpload"), 1)
		},
			"", "", []string{"S3.DeleteObjects", "S3.AbortMultipartUpload", "S3.DeleteBucket"}, true},
		{"upload cannot be aborted", func(f *cloudfake.FakeAWS) {
			fillBucket(ours(f), 1)
			f.FailNext("AbortMultipartUpload", cloudfake.AwsErr("AccessDenied"), 1)
		},
			"aborting upload artifacts/big.bin", "", []string{"S3.DeleteObjects", "S3.AbortMultipartUpload"}, false},
		{"deleted meanwhile", func(f *cloudfake.FakeAWS) {
			ours(f)
			f.FailNext("ListObjectVersions", cloudfake.AwsErr("NoSuchBucket"), 1)
			f.FailNext("ListMultipartUploads", cloudfake.AwsErr("NoSuchBucket"), 1)
			f.FailNext("DeleteBucket", cloudfake.AwsErr("NoSuchBucket"), 1)
		}, "", "", []string{"S3.DeleteBucket"}, false},
		{"DeleteBucket fails", func(f *cloudfake.FakeAWS) { ours(f); f.FailNext("DeleteBucket", cloudfake.AwsErr("BucketNotEmpty"), 1) },
			"deleting S3 bucket", "", []string{"S3.DeleteBucket"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
			c.seed(f)
			log, out := bufProgress()
			err := deleteKind(ctx, f, n, cloud.KindBucket, log)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("deleteBucket = %v, want %q", err, c.want)
			}
			if c.warn != "" && !strings.Contains(out.String(), c.warn) {
				t.Errorf("progress lacks %q:\n%s", c.warn, out)
			}
			if got := f.Mutating(); !slices.Equal(got, c.mutating) {
				t.Errorf("mutating calls %v, want %v", got, c.mutating)
			}
			if gone := f.Buckets[n.Bucket] == nil; gone != c.gone && c.name != "deleted meanwhile" {
				t.Errorf("bucket gone = %v, want %v", gone, c.gone)
			}
		})
	}
}

func TestBucketInventoryRetagAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f := cloudfake.NewFakeAWS()
	rows, err := cloud.BucketInventory(ctx, f, n, "")
	if err != nil || rows != nil {
		t.Errorf("inventory of nothing = %v, %v", rows, err)
	}
	f.AddBucket(n.Bucket, nil)
	if rows, err := cloud.BucketInventory(ctx, f, n, ""); err != nil || len(rows) != 1 || rows[0].State != cloud.StateForeign {
		t.Errorf("inventory of an untagged bucket = %v, %v (want one row, not the stack's)", rows, err)
	}
	f.Buckets[n.Bucket].Tags = cloudfake.StackTagsFor("demo", time.Now())
	rows, err = cloud.BucketInventory(ctx, f, n, "")
	if err != nil || len(rows) != 1 || rows[0] != (cloud.Resource{Kind: cloud.KindBucket, ID: n.Bucket, Name: n.Bucket, State: cloud.StateExists}) {
		t.Errorf("inventory = %v, %v", rows, err)
	}
	f.FailNext("GetBucketTagging", cloudfake.AwsErr("InternalError"), 1)
	if _, err := cloud.BucketInventory(ctx, f, n, ""); err == nil {
		t.Error("inventory hid an error")
	}

	if err := cloud.RetagBucket(ctx, f, n, "2030-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if tags := f.Buckets[n.Bucket].Tags; tags[cloud.TagExpiresAt] != "2030-01-01T00:00:00Z" || tags[cloud.TagStack] != "demo" || tags[cloud.TagVersion] != Version {
		t.Errorf("tags after retag %v", tags)
	}
	f.FailNext("GetBucketTagging", cloudfake.AwsErr("InternalError"), 1)
	if err := cloud.RetagBucket(ctx, f, n, "x"); err == nil || !strings.Contains(err.Error(), "reading tags") {
		t.Errorf("retag = %v", err)
	}
	f.FailNext("PutBucketTagging", cloudfake.AwsErr("InternalError"), 1)
	if err := cloud.RetagBucket(ctx, f, n, "x"); err == nil || !strings.Contains(err.Error(), "moving the expiry of S3 bucket") {
		t.Errorf("retag = %v", err)
	}

	set := cloud.NewStackSet(cloudfake.FakeAccount)
	f.AddBucket("mlstack-other-"+cloudfake.FakeAccount+"-us-east-1", cloudfake.StackTagsFor("other", time.Now()))
	if err := cloud.ListBuckets(ctx, f, cloudfake.FakeAccount, set, map[string]bool{cloudfake.FakeRegion: true}); err != nil {
		t.Fatal(err)
	}
	// A bucket counts toward its stack but vouches for nothing: without the
	// stack's IAM user or role it is an orphan, and its tags set no expiry.
	if got := set.Sorted(); len(got) != 1 || got[0].Stack != "demo" || got[0].Region != cloudfake.FakeRegion || !got[0].ExpiresAt.IsZero() || !got[0].Orphan {
		t.Errorf("listed %+v", got)
	}
}

// testBucketIn is ensureBucket's input with a pending mark that is only remembered.
func testBucketIn(n cloud.Names, tags map[string]string, log *progress) cloud.EnsureBucketInput {
	return cloud.EnsureBucketInput{Names: n, Tags: tags, Log: log, Pending: func(string) error { return nil }}
}

// TestCreateBucketWithoutTagResource: tags at creation need s3:TagResource
// besides s3:CreateBucket; a caller without it gets AccessDenied on the
// create itself. up creates the bucket without them and tags it next, and
// says so.
func TestCreateBucketWithoutTagResource(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} { // moto drops tags at creation, S3 keeps them
		f := newInstalledFake(t)
		f.NoTagResource, f.KeepCreateTags = true, keep
		o, _, log := upOpts(t.TempDir(), "demo")
		mustUp(t, f, o)
		n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
		f.Mu.Lock()
		b := f.Buckets[n.Bucket]
		f.Mu.Unlock()
		if b == nil || b.Tags[cloud.TagStack] != "demo" {
			t.Fatalf("keep=%v: bucket %s: %+v", keep, n.Bucket, b)
		}
		if f.Count("S3.CreateBucket") != 2 || !strings.Contains(log.String(), "without its tags (the caller may not s3:TagResource at creation)") {
			t.Errorf("keep=%v: CreateBucket %d times; progress:\n%s", keep, f.Count("S3.CreateBucket"), log)
		}
	}
}
