package cloud_test

// AWS's page sizes, not the fake's knob: each list below holds more than
// one page at the size AWS answers (internal/awsmodel), so code that reads
// one page misses the rest here as it would on AWS.

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

func TestListsReadEveryPageAtAWSSizes(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct {
		name  string
		items int
		fill  func(f *cloudfake.FakeAWS, i int)
		list  func(f *cloudfake.FakeAWS) (int, error) // items the code saw
		call  string
		calls int // AWS's pages
	}{
		{"IAM users past 100", 150, func(f *cloudfake.FakeAWS, i int) {
			s := fmt.Sprintf("s%03d", i)
			f.AddUser("mlstack-"+s, cloud.StackTags(s, cloudfake.FakeRegion, cloudfake.FakeOwner, time.Now(), 0))
		}, func(f *cloudfake.FakeAWS) (int, error) {
			set := cloud.NewStackSet(cloudfake.FakeAccount)
			err := cloud.ListUsers(f.Ctx(), f, set, map[string]bool{cloudfake.FakeRegion: true})
			return len(set.Sorted()), err
		}, "IAM.ListUsers", 2},
		{"IAM roles past 100", 201, func(f *cloudfake.FakeAWS, i int) {
			s := fmt.Sprintf("s%03d", i)
			f.AddRole("mlstack-"+s+"-server", cloud.StackTags(s, cloudfake.FakeRegion, cloudfake.FakeOwner, time.Now(), 0))
		}, func(f *cloudfake.FakeAWS) (int, error) {
			set := cloud.NewStackSet(cloudfake.FakeAccount)
			err := cloud.ListRoles(f.Ctx(), f, set, map[string]bool{cloudfake.FakeRegion: true})
			return len(set.Sorted()), err
		}, "IAM.ListRoles", 3},
		{"SSM parameters past 10", 25, func(f *cloudfake.FakeAWS, i int) {
			f.PutPublished(n.Param(fmt.Sprintf("p%02d", i)), "v")
		}, func(f *cloudfake.FakeAWS) (int, error) {
			rows, _, err := cloud.ParamInventory(f.Ctx(), f, n)
			return len(rows), err
		}, "SSM.GetParametersByPath", 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := cloudfake.NewFakeAWS()
			for i := range c.items {
				c.fill(f, i)
			}
			got, err := c.list(f)
			must(t, err)
			if got != c.items || f.Count(c.call) != c.calls {
				t.Errorf("saw %d of %d in %d calls of %s (want %d)", got, c.items, f.Count(c.call), c.call, c.calls)
			}
		})
	}
}

// down empties a bucket of more versions and uploads than one page holds
// (1,000 each), as S3 pages them.
func TestDeleteBucketPastS3Pages(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	b := f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
	for i := range 2500 {
		b.Versions = append(b.Versions, cloudfake.FakeVersion{Key: fmt.Sprintf("artifacts/%05d", i), ID: "1", Size: 1})
	}
	for i := range 1001 {
		b.Uploads = append(b.Uploads, cloudfake.FakeUpload{Key: fmt.Sprintf("artifacts/big%04d", i), ID: "u"})
	}
	must(t, cloud.DeleteBucket(f.Ctx(), f, n, newProgress(io.Discard)))
	if f.Buckets[n.Bucket] != nil {
		t.Fatal("bucket left")
	}
	if f.Count("S3.ListObjectVersions") != 3 || f.Count("S3.DeleteObjects") != 3 || f.Count("S3.ListMultipartUploads") != 2 || f.Count("S3.AbortMultipartUpload") != 1001 {
		t.Errorf("versions listed %d times, deleted in %d batches; uploads listed %d times, %d aborted",
			f.Count("S3.ListObjectVersions"), f.Count("S3.DeleteObjects"), f.Count("S3.ListMultipartUploads"), f.Count("S3.AbortMultipartUpload"))
	}
}

// The fake's tokens are AWS's kind: a forged one, or one brought to
// another listing, is refused with the service's code.
func TestFakeRefusesForeignTokens(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	for i := range 101 {
		f.AddUser(fmt.Sprintf("mlstack-s%03d", i), nil)
	}
	ctx := f.Ctx()
	first, err := f.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String(cloud.IAMPath)})
	must(t, err)
	if len(first.Users) != 100 || !first.IsTruncated || first.Marker == nil {
		t.Fatalf("first page: %d users, truncated %v", len(first.Users), first.IsTruncated)
	}
	for _, c := range []struct {
		name, prefix, marker string
		code                 string
	}{
		{"its own listing", cloud.IAMPath, aws.ToString(first.Marker), ""},
		{"forged", cloud.IAMPath, "mlstack-s099", "ValidationError"},
		{"another listing", "/", aws.ToString(first.Marker), "ValidationError"},
	} {
		out, err := f.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String(c.prefix), Marker: aws.String(c.marker)})
		if cloud.ErrorCode(err) != c.code || c.code == "" && (len(out.Users) != 1 || out.IsTruncated) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
