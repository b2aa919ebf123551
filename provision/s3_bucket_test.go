package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	tags := stackTagsFor("demo", time.Now())
	cases := []struct {
		name     string
		region   string
		seed     func(f *fakeAWS)
		plan     []string
		mutating []string
	}{
		{"new bucket", fakeRegion, nil,
			[]string{"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)"},
			[]string{"S3.CreateBucket", "S3.PutBucketTagging", "S3.PutPublicAccessBlock", "S3.PutBucketEncryption"}},
		{"new bucket in us-east-1", "us-east-1", nil,
			[]string{"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)"},
			[]string{"S3.CreateBucket", "S3.PutBucketTagging", "S3.PutPublicAccessBlock", "S3.PutBucketEncryption"}},
		{"complete", fakeRegion, func(f *fakeAWS) {
			b := f.addBucket(n.Bucket, tags)
			b.pab, b.encrypted = allBlocked, true
		}, nil, nil},
		{"public access not blocked", fakeRegion, func(f *fakeAWS) {
			f.addBucket(n.Bucket, tags).encrypted = true
		}, []string{"block public access to S3 bucket " + n.Bucket}, []string{"S3.PutPublicAccessBlock"}},
		{"public access partly blocked", fakeRegion, func(f *fakeAWS) {
			b := f.addBucket(n.Bucket, tags)
			b.encrypted = true
			b.pab = &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true)}
		}, []string{"block public access to S3 bucket " + n.Bucket}, []string{"S3.PutPublicAccessBlock"}},
		{"not encrypted", fakeRegion, func(f *fakeAWS) {
			f.addBucket(n.Bucket, tags).pab = allBlocked
		}, []string{"set default encryption on S3 bucket " + n.Bucket}, []string{"S3.PutBucketEncryption"}},
		{"neither", fakeRegion, func(f *fakeAWS) { f.addBucket(n.Bucket, tags) },
			[]string{"block public access to S3 bucket " + n.Bucket, "set default encryption on S3 bucket " + n.Bucket},
			[]string{"S3.PutPublicAccessBlock", "S3.PutBucketEncryption"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeAWS()
			f.region = c.region
			n := cloud.NamesFor("demo", fakeAccount, c.region)
			if c.seed != nil {
				c.seed(f)
			}
			found, err := cloud.FindBucket(ctx, f, n, "")
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, p := range c.plan {
				want = append(want, strings.ReplaceAll(p, cloud.NamesFor("demo", fakeAccount, fakeRegion).Bucket, n.Bucket))
			}
			if got := texts(found.Plan(n)); !slices.Equal(got, want) {
				t.Errorf("plan %q, want %q", got, want)
			}
			log, _ := bufProgress()
			if err := cloud.EnsureBucket(ctx, f, found, testBucketIn(n, tags, log)); err != nil {
				t.Fatal(err)
			}
			if got := f.mutating(); !slices.Equal(got, c.mutating) {
				t.Errorf("mutating calls %v, want %v", got, c.mutating)
			}
			again, err := cloud.FindBucket(ctx, f, n, "")
			if err != nil || !again.Exists || !again.PublicBlocked || !again.Encrypted || len(again.Plan(n)) != 0 {
				t.Errorf("after ensure: %+v, %v", again, err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if b := f.buckets[n.Bucket]; b.region != c.region || b.tags[cloud.TagStack] != "demo" {
				t.Errorf("bucket %+v", b)
			}
		})
	}
}

func TestCreateBucketRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	tags := stackTagsFor("demo", time.Now())

	// Our own bucket, made a moment ago by a retried request: tag it and go on.
	f := newFakeAWS()
	f.addBucket(n.Bucket, nil)
	log, _ := bufProgress()
	if err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, testBucketIn(n, tags, log)); err != nil {
		t.Fatalf("BucketAlreadyOwnedByYou: %v", err)
	}
	if f.buckets[n.Bucket].tags[cloud.TagStack] != "demo" {
		t.Error("bucket not tagged after BucketAlreadyOwnedByYou")
	}

	// Another account's bucket of that name.
	f = newFakeAWS()
	f.addBucket(n.Bucket, nil).foreign = true
	err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, testBucketIn(n, tags, log))
	if err == nil || !strings.Contains(err.Error(), "is taken by another account: choose another --stack") {
		t.Fatalf("BucketAlreadyExists: %v", err)
	}
	if got := f.mutating(); !slices.Equal(got, []string{"S3.CreateBucket"}) {
		t.Errorf("mutating calls %v", got)
	}
}

func TestFindBucketRefusesForeign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	cases := []struct {
		name     string
		seed     func(f *fakeAWS)
		notOwned bool
		want     string
	}{
		{"untagged", func(f *fakeAWS) { f.addBucket(n.Bucket, nil) }, true, "is not tagged mlstack:stack=demo"},
		{"tagged for another stack", func(f *fakeAWS) { f.addBucket(n.Bucket, stackTagsFor("other", time.Now())) }, true, "mlstack will not adopt"},
		{"tagged without a stack", func(f *fakeAWS) { f.addBucket(n.Bucket, map[string]string{"team": "ml"}) }, true, "is not tagged"},
		{"another account", func(f *fakeAWS) { f.addBucket(n.Bucket, nil).foreign = true }, false, "another account or region owns it"},
		{"another region", func(f *fakeAWS) { f.failNext("HeadBucket", awsErr("301"), 1) }, false, "another account or region owns it"},
		{"HeadBucket fails", func(f *fakeAWS) { f.failNext("HeadBucket", awsErr("InternalError"), 1) }, false, "checking S3 bucket"},
		{"tags unreadable", func(f *fakeAWS) {
			f.addBucket(n.Bucket, nil)
			f.failNext("GetBucketTagging", awsErr("InternalError"), 1)
		}, false, "reading tags of S3 bucket"},
		{"public access block unreadable", func(f *fakeAWS) {
			f.addBucket(n.Bucket, stackTagsFor("demo", time.Now()))
			f.failNext("GetPublicAccessBlock", awsErr("InternalError"), 1)
		}, false, "reading public access block"},
		{"encryption unreadable", func(f *fakeAWS) {
			f.addBucket(n.Bucket, stackTagsFor("demo", time.Now()))
			f.failNext("GetBucketEncryption", awsErr("InternalError"), 1)
		}, false, "reading encryption"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeAWS()
			c.seed(f)
			_, err := cloud.FindBucket(ctx, f, n, "")
			var no *cloud.NotOwnedError
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &no) != c.notOwned {
				t.Fatalf("findBucket = %v, want %q (not owned: %v)", err, c.want, c.notOwned)
			}
			if c.notOwned && (no.Kind != "S3 bucket" || no.Name != n.Bucket || no.Stack != "demo") {
				t.Errorf("not owned: %+v", no)
			}
		})
	}
}

func TestEnsureBucketErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	tags := stackTagsFor("demo", time.Now())
	for _, c := range []struct{ op, want string }{
		{"CreateBucket", "creating S3 bucket"},
		{"PutBucketTagging", "tagging S3 bucket"},
		{"PutPublicAccessBlock", "blocking public access"},
		{"PutBucketEncryption", "setting default encryption"},
	} {
		f := newFakeAWS()
		f.failNext(c.op, awsErr("InternalError"), 1)
		log, _ := bufProgress()
		if err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, testBucketIn(n, tags, log)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
}

// fillBucket puts objects with several versions, delete markers and an
// unfinished upload into a bucket.
func fillBucket(b *fakeBucket, objects int) {
	for i := range objects {
		key := fmt.Sprintf("artifacts/%03d/model.pkl", i)
		b.versions = append(b.versions, fakeVersion{key: key, id: "v1"}, fakeVersion{key: key, id: "v2"})
		if i%3 == 0 {
			b.versions = append(b.versions, fakeVersion{key: key, id: "dm", marker: true})
		}
	}
	b.uploads = append(b.uploads, fakeUpload{key: "artifacts/big.bin", id: "upload-1"})
}

func TestDeleteBucketEmptiesEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	f := newFakeAWS()
	f.pageSize = 4 // versions come four to a page
	b := f.addBucket(n.Bucket, stackTagsFor("demo", time.Now()))
	fillBucket(b, 5) // 10 versions and 2 delete markers
	log, out := bufProgress()
	if err := deleteKind(ctx, f, n, cloud.KindBucket, log); err != nil {
		t.Fatal(err)
	}
	if f.buckets[n.Bucket] != nil {
		t.Fatal("bucket not deleted")
	}
	if got := f.count("S3.ListObjectVersions"); got != 3 {
		t.Errorf("ListObjectVersions called %d times, want 3 pages", got)
	}
	want := []string{"S3.DeleteObjects", "S3.DeleteObjects", "S3.DeleteObjects", "S3.AbortMultipartUpload", "S3.DeleteBucket"}
	if got := f.mutating(); !slices.Equal(got, want) {
		t.Errorf("mutating calls %v, want %v", got, want)
	}
	if !strings.Contains(out.String(), "emptying and deleting S3 bucket "+n.Bucket) {
		t.Errorf("progress:\n%s", out)
	}
}

func TestDeleteBucketCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	ours := func(f *fakeAWS) *fakeBucket { return f.addBucket(n.Bucket, stackTagsFor("demo", time.Now())) }
	cases := []struct {
		name     string
		seed     func(f *fakeAWS)
		want     string // error text; "" for none
		warn     string // progress text
		mutating []string
		gone     bool
	}{
		{"missing", func(f *fakeAWS) {}, "", "", nil, true},
		{"untagged", func(f *fakeAWS) { fillBucket(f.addBucket(n.Bucket, nil), 2) }, "", "leaving S3 bucket " + n.Bucket + " alone", nil, false},
		{"another stack's", func(f *fakeAWS) { fillBucket(f.addBucket(n.Bucket, stackTagsFor("other", time.Now())), 2) }, "", "leaving S3 bucket", nil, false},
		{"another account's", func(f *fakeAWS) { f.addBucket(n.Bucket, nil).foreign = true }, "access denied reading its tags", "", nil, false},
		{"tags unreadable", func(f *fakeAWS) { ours(f); f.failNext("GetBucketTagging", awsErr("InternalError"), 1) }, "reading S3 bucket", "", nil, false},
		{"objects refuse deletion", func(f *fakeAWS) {
			b := ours(f)
			fillBucket(b, 2)
			b.deleteErrs = map[string]string{"artifacts/001/model.pkl": "AccessDenied"}
		}, "artifacts/001/model.pkl: AccessDenied", "", []string{"S3.DeleteObjects"}, false},
		{"DeleteObjects fails", func(f *fakeAWS) { fillBucket(ours(f), 1); f.failNext("DeleteObjects", awsErr("SlowDown"), 1) },
			"deleting objects of S3 bucket", "", []string{"S3.DeleteObjects"}, false},
		{"upload already gone", func(f *fakeAWS) {
			fillBucket(ours(f), 1)
			f.failNext("AbortMultipartUpload", awsErr("NoSuchUpload"), 1)
		},
			"", "", []string{"S3.DeleteObjects", "S3.AbortMultipartUpload", "S3.DeleteBucket"}, true},
		{"upload cannot be aborted", func(f *fakeAWS) {
			fillBucket(ours(f), 1)
			f.failNext("AbortMultipartUpload", awsErr("AccessDenied"), 1)
		},
			"aborting upload artifacts/big.bin", "", []string{"S3.DeleteObjects", "S3.AbortMultipartUpload"}, false},
		{"deleted meanwhile", func(f *fakeAWS) {
			ours(f)
			f.failNext("ListObjectVersions", awsErr("NoSuchBucket"), 1)
			f.failNext("ListMultipartUploads", awsErr("NoSuchBucket"), 1)
			f.failNext("DeleteBucket", awsErr("NoSuchBucket"), 1)
		}, "", "", []string{"S3.DeleteBucket"}, false},
		{"DeleteBucket fails", func(f *fakeAWS) { ours(f); f.failNext("DeleteBucket", awsErr("BucketNotEmpty"), 1) },
			"deleting S3 bucket", "", []string{"S3.DeleteBucket"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeAWS()
			c.seed(f)
			log, out := bufProgress()
			err := deleteKind(ctx, f, n, cloud.KindBucket, log)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("deleteBucket = %v, want %q", err, c.want)
			}
			if c.warn != "" && !strings.Contains(out.String(), c.warn) {
				t.Errorf("progress lacks %q:\n%s", c.warn, out)
			}
			if got := f.mutating(); !slices.Equal(got, c.mutating) {
				t.Errorf("mutating calls %v, want %v", got, c.mutating)
			}
			if gone := f.buckets[n.Bucket] == nil; gone != c.gone && c.name != "deleted meanwhile" {
				t.Errorf("bucket gone = %v, want %v", gone, c.gone)
			}
		})
	}
}

func TestBucketInventoryRetagAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", fakeAccount, fakeRegion)
	f := newFakeAWS()
	rows, err := cloud.BucketInventory(ctx, f, n, "")
	if err != nil || rows != nil {
		t.Errorf("inventory of nothing = %v, %v", rows, err)
	}
	f.addBucket(n.Bucket, nil)
	if rows, err := cloud.BucketInventory(ctx, f, n, ""); err != nil || len(rows) != 1 || rows[0].State != cloud.StateForeign {
		t.Errorf("inventory of an untagged bucket = %v, %v (want one row, not the stack's)", rows, err)
	}
	f.buckets[n.Bucket].tags = stackTagsFor("demo", time.Now())
	rows, err = cloud.BucketInventory(ctx, f, n, "")
	if err != nil || len(rows) != 1 || rows[0] != (cloud.Resource{Kind: cloud.KindBucket, ID: n.Bucket, Name: n.Bucket, State: cloud.StateExists}) {
		t.Errorf("inventory = %v, %v", rows, err)
	}
	f.failNext("GetBucketTagging", awsErr("InternalError"), 1)
	if _, err := cloud.BucketInventory(ctx, f, n, ""); err == nil {
		t.Error("inventory hid an error")
	}

	if err := cloud.RetagBucket(ctx, f, n, "2030-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if tags := f.buckets[n.Bucket].tags; tags[cloud.TagExpiresAt] != "2030-01-01T00:00:00Z" || tags[cloud.TagStack] != "demo" || tags[cloud.TagVersion] != Version {
		t.Errorf("tags after retag %v", tags)
	}
	f.failNext("GetBucketTagging", awsErr("InternalError"), 1)
	if err := cloud.RetagBucket(ctx, f, n, "x"); err == nil || !strings.Contains(err.Error(), "reading tags") {
		t.Errorf("retag = %v", err)
	}
	f.failNext("PutBucketTagging", awsErr("InternalError"), 1)
	if err := cloud.RetagBucket(ctx, f, n, "x"); err == nil || !strings.Contains(err.Error(), "moving the expiry of S3 bucket") {
		t.Errorf("retag = %v", err)
	}

	set := cloud.NewStackSet(fakeAccount)
	f.addBucket("mlstack-other-"+fakeAccount+"-us-east-1", stackTagsFor("other", time.Now()))
	if err := cloud.ListBuckets(ctx, f, fakeAccount, set, map[string]bool{fakeRegion: true}); err != nil {
		t.Fatal(err)
	}
	// A bucket counts toward its stack but vouches for nothing: without the
	// stack's IAM user or role it is an orphan, and its tags set no expiry.
	if got := set.Sorted(); len(got) != 1 || got[0].Stack != "demo" || got[0].Region != fakeRegion || !got[0].ExpiresAt.IsZero() || !got[0].Orphan {
		t.Errorf("listed %+v", got)
	}
}

// testBucketIn is ensureBucket's input with a pending mark that is only remembered.
func testBucketIn(n cloud.Names, tags map[string]string, log *progress) cloud.EnsureBucketInput {
	return cloud.EnsureBucketInput{Names: n, Tags: tags, Log: log, Pending: func(string) error { return nil }}
}
