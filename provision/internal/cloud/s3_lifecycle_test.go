package cloud_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// bucketInput is an EnsureBucketInput whose Pending marks land in *marks.
func bucketInput(n cloud.Names, marks *[]string) cloud.EnsureBucketInput {
	return cloud.EnsureBucketInput{
		Names: n, Tags: cloudfake.StackTagsFor(n.Stack, time.Now()),
		Pending: func(name string) error { *marks = append(*marks, name); return nil },
		Log:     newProgress(io.Discard),
	}
}

func TestEnsureBucketCreatesThenLeavesAlone(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	var marks []string
	b, err := cloud.FindBucket(ctx, f, n, "")
	must(t, err)
	if p := b.Plan(n); b.Exists || len(p) != 1 || p[0].Verb != "create" {
		t.Fatalf("found %+v, plan %+v", b, p)
	}
	must(t, cloud.EnsureBucket(ctx, f, b, bucketInput(n, &marks)))
	fb := f.Buckets[n.Bucket]
	if fb == nil || fb.Tags[cloud.TagStack] != "demo" || !fb.Encrypted || fb.Pab == nil || !*fb.Pab.RestrictPublicBuckets {
		t.Fatalf("bucket %+v", fb)
	}
	if fb.Region != cloudfake.FakeRegion || fb.Namespace != "account-regional" {
		t.Errorf("bucket made in %s, namespace %q", fb.Region, fb.Namespace)
	}
	// The pending mark covers exactly the window between create and tag.
	if len(marks) != 2 || marks[0] != n.Bucket || marks[1] != "" {
		t.Errorf("pending marks %q", marks)
	}

	b, err = cloud.FindBucket(ctx, f, n, "")
	must(t, err)
	if !b.Exists || !b.PublicBlocked || !b.Encrypted || len(b.Plan(n)) != 0 {
		t.Fatalf("found %+v, plan %+v", b, b.Plan(n))
	}
	f.ResetCalls()
	must(t, cloud.EnsureBucket(ctx, f, b, bucketInput(n, &marks)))
	if len(f.Calls()) != 0 {
		t.Errorf("second ensure called %v", f.Calls())
	}

	// Settings someone turned off are put back; nothing else is touched.
	fb.Encrypted, fb.Pab = false, nil
	b, err = cloud.FindBucket(ctx, f, n, "")
	must(t, err)
	if p := b.Plan(n); len(p) != 2 || !strings.Contains(p[0].Text, "block public access") || !strings.Contains(p[1].Text, "default encryption") {
		t.Errorf("plan %+v", p)
	}
	f.ResetCalls()
	must(t, cloud.EnsureBucket(ctx, f, b, bucketInput(n, &marks)))
	if m := f.Mutating(); strings.Join(m, " ") != "S3.PutPublicAccessBlock S3.PutBucketEncryption" || !fb.Encrypted || fb.Pab == nil {
		t.Errorf("repair called %v", m)
	}
}

func TestEnsureBucketFinishesItsOwnHalfCreatedBucket(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.AddBucket(n.Bucket, nil) // created, never tagged: the run was interrupted

	// Another machine (no pending mark) refuses it.
	var no *cloud.NotOwnedError
	if _, err := cloud.FindBucket(f.Ctx(), f, n, ""); !errors.As(err, &no) {
		t.Fatalf("untagged bucket without the mark: %v", err)
	}
	// This machine tags it and finishes its settings, without creating it again.
	b, err := cloud.FindBucket(f.Ctx(), f, n, n.Bucket)
	must(t, err)
	var marks []string
	must(t, cloud.EnsureBucket(f.Ctx(), f, b, bucketInput(n, &marks)))
	if f.Count("S3.CreateBucket") != 0 || f.Buckets[n.Bucket].Tags[cloud.TagStack] != "demo" || !f.Buckets[n.Bucket].Encrypted {
		t.Errorf("calls %v, bucket %+v", f.Calls(), f.Buckets[n.Bucket])
	}
	if len(marks) != 1 || marks[0] != "" {
		t.Errorf("pending marks %q", marks)
	}
}

func TestEnsureBucketCreateAnswers(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct {
		name    string
		seed    func(f *cloudfake.FakeAWS)
		wantErr string
		code    string
	}{
		// Our own retried CreateBucket, or a concurrent run of this stack: tag it.
		{"already owned by us", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil) }, "", ""},
		{"taken by another account", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil).Foreign = true }, "is taken by another account", ""},
		{"name busy for a moment", func(f *cloudfake.FakeAWS) { f.FailNext("CreateBucket", cloudfake.AwsErr("OperationAborted"), 2) }, "", ""},
		{"name busy for good", func(f *cloudfake.FakeAWS) { f.FailNext("CreateBucket", cloudfake.AwsErr("OperationAborted"), -1) }, "S3 still holds the name", "OperationAborted"},
		{"create denied", func(f *cloudfake.FakeAWS) { f.FailNext("CreateBucket", cloudfake.AwsErr("AccessDenied"), -1) }, "creating S3 bucket", "AccessDenied"},
		// Tags at creation need s3:TagResource: created without them, then tagged.
		{"tags at creation denied", func(f *cloudfake.FakeAWS) { f.NoTagResource = true }, "", ""},
		{"not visible yet", func(f *cloudfake.FakeAWS) {
			f.FailNext("PutBucketTagging", cloudfake.AwsErr("NoSuchBucket"), 1)
			f.FailNext("PutPublicAccessBlock", cloudfake.AwsErr("OperationAborted"), 1)
			f.FailNext("PutBucketEncryption", cloudfake.AwsErr("NoSuchBucket"), 1)
		}, "", ""},
		{"tagging denied", func(f *cloudfake.FakeAWS) { f.FailNext("PutBucketTagging", cloudfake.AwsErr("AccessDenied"), 1) }, "tagging S3 bucket", "AccessDenied"},
		{"block denied", func(f *cloudfake.FakeAWS) { f.FailNext("PutPublicAccessBlock", cloudfake.AwsErr("AccessDenied"), 1) }, "blocking public access", "AccessDenied"},
		{"encryption denied", func(f *cloudfake.FakeAWS) { f.FailNext("PutBucketEncryption", cloudfake.AwsErr("AccessDenied"), 1) }, "setting default encryption", "AccessDenied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := cloudfake.NewFakeAWS()
			c.seed(f)
			ctx := f.Ctx() // S3 holds a name for up to production's two minutes
			if c.name == "name busy for good" {
				ctx = f.CtxWaits(func(w *cloud.Waits) { w.NameBusy = 20 * time.Millisecond })
			}
			var marks []string
			err := cloud.EnsureBucket(ctx, f, &cloud.BucketFound{}, bucketInput(n, &marks))
			if c.wantErr == "" {
				must(t, err)
				if fb := f.Buckets[n.Bucket]; fb.Tags[cloud.TagStack] != "demo" || !fb.Encrypted || fb.Pab == nil {
					t.Errorf("bucket %+v", fb)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || cloud.ErrorCode(err) != c.code {
				t.Fatalf("ensure = %v, want %q (code %q)", err, c.wantErr, c.code)
			}
			if fb := f.Buckets[n.Bucket]; fb != nil && fb.Tags[cloud.TagStack] == "demo" && c.name == "taken by another account" {
				t.Errorf("tagged another account's bucket")
			}
		})
	}

	// The pending mark cannot be written: nothing is created.
	f := cloudfake.NewFakeAWS()
	in := bucketInput(n, new([]string))
	in.Pending = func(string) error { return errors.New("read-only state") }
	if err := cloud.EnsureBucket(f.Ctx(), f, &cloud.BucketFound{}, in); err == nil || len(f.Mutating()) != 0 {
		t.Errorf("ensure = %v, calls %v", err, f.Mutating())
	}
}

func TestEnsureBucketGlobalNamespace(t *testing.T) {
	t.Parallel()
	// Where S3 has no account-regional namespace the bucket is made in the
	// global one, and us-east-1 gets no location constraint.
	for _, region := range []string{"me-south-1", "us-east-1"} {
		f := cloudfake.NewFakeAWS()
		f.Region = region
		n := cloud.NamesFor("demo", cloudfake.FakeAccount, region)
		var marks []string
		must(t, cloud.EnsureBucket(f.Ctx(), f, &cloud.BucketFound{}, bucketInput(n, &marks)))
		if fb := f.Buckets[n.Bucket]; fb == nil || fb.Region != region {
			t.Errorf("%s: buckets %v", region, f.Buckets)
		}
	}
}

func TestBucketInventory(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct {
		name    string
		seed    func(f *cloudfake.FakeAWS)
		pending string
		state   string // "" : no row
		wantErr string
	}{
		{"missing", func(*cloudfake.FakeAWS) {}, "", "", ""},
		{"ours", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now())) }, "", cloud.StateExists, ""},
		{"another stack's tags", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, cloudfake.StackTagsFor("x", time.Now())) }, "", cloud.StateForeign, ""},
		{"untagged", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil) }, "", cloud.StateForeign, ""},
		{"untagged, made here", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil) }, n.Bucket, "untagged", ""},
		{"another account's", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil).Foreign = true }, "", "", "access denied reading its tags"},
		{"tags unreadable", func(f *cloudfake.FakeAWS) { f.FailNext("GetBucketTagging", cloudfake.AwsErr("InternalError"), 1) }, "", "", "reading S3 bucket"},
	} {
		f := cloudfake.NewFakeAWS()
		c.seed(f)
		rows, err := cloud.BucketInventory(f.Ctx(), f, n, c.pending)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: %v", c.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.state == "" && rows != nil:
			t.Errorf("%s: rows %+v", c.name, rows)
		case c.state != "" && (len(rows) != 1 || rows[0].State != c.state || rows[0].Kind != cloud.KindBucket || rows[0].Name != n.Bucket):
			t.Errorf("%s: rows %+v, want state %s", c.name, rows, c.state)
		}
		if len(f.Mutating()) != 0 {
			t.Errorf("%s: inventory changed %v", c.name, f.Mutating())
		}
	}
}

func TestListAndRetagBuckets(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	demo := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	far := cloud.NamesFor("far", cloudfake.FakeAccount, "us-east-1")
	old := cloud.NamesFor("old", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.AddBucket(demo.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	f.AddBucket(far.Bucket, cloud.StackTags("far", "us-east-1", cloudfake.FakeOwner, time.Now(), 0))
	f.AddBucket(old.GlobalBucket, cloudfake.StackTagsFor("old", time.Now())) // made before the regional namespace
	f.AddBucket(cloud.NamesFor("bare", cloudfake.FakeAccount, cloudfake.FakeRegion).Bucket, nil)
	f.AddBucket("mlstack-demo-999999999999-"+cloudfake.FakeRegion, cloudfake.StackTagsFor("intruder", time.Now()))
	f.AddBucket("someone-elses", cloudfake.StackTagsFor("x", time.Now()))

	set := cloud.NewStackSet(cloudfake.FakeAccount)
	must(t, cloud.ListBuckets(ctx, f, cloudfake.FakeAccount, set, map[string]bool{cloudfake.FakeRegion: true}))
	var got []string
	for _, s := range set.Sorted() {
		got = append(got, s.Stack+"@"+s.Region)
	}
	if strings.Join(got, " ") != "demo@"+cloudfake.FakeRegion+" old@"+cloudfake.FakeRegion {
		t.Errorf("listed %v", got)
	}

	must(t, cloud.RetagBucket(ctx, f, demo, "2031-01-01T00:00:00Z"))
	if tags := f.Buckets[demo.Bucket].Tags; tags[cloud.TagExpiresAt] != "2031-01-01T00:00:00Z" || tags[cloud.TagStack] != "demo" {
		t.Errorf("tags %v", tags)
	}
	for _, op := range []string{"GetBucketTagging", "PutBucketTagging"} {
		f.FailNext(op, cloudfake.AwsErr("InternalError"), 1)
		if err := cloud.RetagBucket(ctx, f, demo, "x"); cloud.ErrorCode(err) != "InternalError" {
			t.Errorf("%s failing: %v", op, err)
		}
	}
	for _, op := range []string{"ListBuckets", "GetBucketTagging"} {
		f.FailNext(op, cloudfake.AwsErr("InternalError"), 1)
		if err := cloud.ListBuckets(ctx, f, cloudfake.FakeAccount, set, map[string]bool{cloudfake.FakeRegion: true}); cloud.ErrorCode(err) != "InternalError" {
			t.Errorf("%s failing: %v", op, err)
		}
	}
}

func TestDeleteBucketEmptiesEveryVersion(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	f.PageSize = 2
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	b := f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	b.Versions = []cloudfake.FakeVersion{
		{Key: "artifacts/a", ID: "1", Size: 10}, {Key: "artifacts/a", ID: "2", Size: 20},
		{Key: "artifacts/b", ID: "1", Marker: true}, {Key: "mlflow.db", ID: "1", Size: 5}, {Key: "z", ID: "9", Size: 1},
	}
	b.Uploads = []cloudfake.FakeUpload{{Key: "artifacts/big", ID: "u1"}, {Key: "artifacts/bigger", ID: "u2"}}
	must(t, cloud.DeleteBucket(f.Ctx(), f, n, newProgress(io.Discard)))
	if f.Buckets[n.Bucket] != nil {
		t.Fatal("bucket left")
	}
	if f.Count("S3.ListObjectVersions") != 3 || f.Count("S3.AbortMultipartUpload") != 2 {
		t.Errorf("calls %v", f.Calls())
	}
	// A bucket that is gone already is done.
	f.ResetCalls()
	must(t, cloud.DeleteBucket(f.Ctx(), f, n, newProgress(io.Discard)))
	if f.Count("S3.DeleteObjects") != 0 {
		t.Errorf("calls %v", f.Calls())
	}
}

func TestDeleteBucketFailures(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct{ op, want string }{
		{"ListObjectVersions", "listing objects of S3 bucket"},
		{"DeleteObjects", "deleting objects of S3 bucket"},
		{"ListMultipartUploads", "listing unfinished uploads"},
		{"AbortMultipartUpload", "aborting upload artifacts/big"},
		{"DeleteBucket", "deleting S3 bucket"},
	} {
		f := cloudfake.NewFakeAWS()
		b := f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
		b.Versions = []cloudfake.FakeVersion{{Key: "artifacts/a", ID: "1"}}
		b.Uploads = []cloudfake.FakeUpload{{Key: "artifacts/big", ID: "u1"}}
		f.FailNext(c.op, cloudfake.AwsErr("InternalError"), 1)
		err := cloud.DeleteBucket(f.Ctx(), f, n, newProgress(io.Discard))
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "InternalError" || f.Buckets[n.Bucket] == nil {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
	// An object S3 refuses to delete stops the delete, naming it.
	f := cloudfake.NewFakeAWS()
	b := f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	b.Versions = []cloudfake.FakeVersion{{Key: "locked", ID: "1"}, {Key: "free", ID: "1"}}
	b.DeleteErrs = map[string]string{"locked": "AccessDenied"}
	err := cloud.DeleteBucket(f.Ctx(), f, n, newProgress(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "locked: AccessDenied") || f.Count("S3.DeleteBucket") != 0 {
		t.Errorf("delete = %v", err)
	}
	if len(b.Versions) != 1 || b.Versions[0].Key != "locked" {
		t.Errorf("versions left %+v", b.Versions)
	}
}

func TestResolveBucket(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	if n.GlobalBucket == "" {
		t.Fatal("no global name to fall back to")
	}
	for _, c := range []struct {
		name      string
		seed      func(f *cloudfake.FakeAWS)
		want      string
		asked     bool
		headErr   bool
		wantErr   string
		keepsGlob bool
	}{
		{"neither: the regional name", func(*cloudfake.FakeAWS) {}, n.Bucket, true, true, "", true},
		{"regional there", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil) }, n.Bucket, true, false, "", true},
		{"an older stack's global bucket", func(f *cloudfake.FakeAWS) { f.AddBucket(n.GlobalBucket, nil) }, n.GlobalBucket, true, false, "", false},
		{"global name of another account", func(f *cloudfake.FakeAWS) { f.AddBucket(n.GlobalBucket, nil).Foreign = true }, n.Bucket, true, true, "", true},
		{"regional head fails", func(f *cloudfake.FakeAWS) { f.FailNext("HeadBucket", cloudfake.AwsErr("InternalError"), 1) }, n.Bucket, false, true, "checking S3 bucket " + n.Bucket, true},
		{"global head fails", func(f *cloudfake.FakeAWS) {
			f.FailIf("HeadBucket", cloudfake.AwsErr("InternalError"), 1, false, func(in any) bool {
				h, ok := in.(*s3.HeadBucketInput)
				return ok && aws.ToString(h.Bucket) == n.GlobalBucket
			})
		}, n.Bucket, false, true, "checking S3 bucket " + n.GlobalBucket, true},
	} {
		f := cloudfake.NewFakeAWS()
		c.seed(f)
		got, head, err := cloud.ResolveBucketHead(f.Ctx(), f, n)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v", c.name, err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if got.Bucket != c.want || head.Asked != c.asked || (head.Err != nil) != c.headErr || (got.GlobalBucket != "") != c.keepsGlob {
			t.Errorf("%s: resolved %s (global %q), head %+v", c.name, got.Bucket, got.GlobalBucket, head)
		}
	}
	// Without a global name there is nothing to ask.
	f := cloudfake.NewFakeAWS()
	plain := n
	plain.GlobalBucket = ""
	got, err := cloud.ResolveBucket(context.Background(), f, plain)
	if err != nil || got != plain || len(f.Calls()) != 0 {
		t.Errorf("resolve %+v %v, calls %v", got, err, f.Calls())
	}
}

func TestMeasureBucket(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	f.PageSize = 1
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	if u, err := cloud.MeasureBucket(f.Ctx(), f, n.Bucket); err != nil || u.Objects != 0 || u.Bytes != 0 {
		t.Errorf("missing bucket: %+v %v", u, err)
	}
	b := f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	b.Versions = []cloudfake.FakeVersion{
		{Key: "artifacts/a", ID: "1", Size: 10}, {Key: "artifacts/a", ID: "2", Size: 20},
		{Key: "artifacts/b", ID: "1", Size: 5}, {Key: "artifacts/c", ID: "1", Marker: true},
		{Key: "install.lock", ID: "1", Size: 1000},
	}
	u, err := cloud.MeasureBucket(f.Ctx(), f, n.Bucket)
	if err != nil || u.Objects != 2 || u.Bytes != 35 {
		t.Errorf("measured %+v %v, want 2 objects, 35 bytes", u, err)
	}
	f.FailNext("ListObjectVersions", cloudfake.AwsErr("InternalError"), 1)
	if _, err := cloud.MeasureBucket(f.Ctx(), f, n.Bucket); cloud.ErrorCode(err) != "InternalError" {
		t.Errorf("measure = %v", err)
	}
}
