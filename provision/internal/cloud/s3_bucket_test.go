package cloud_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

func TestFindBucketRefusesForeign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	cases := []struct {
		name     string
		seed     func(f *cloudfake.FakeAWS)
		notOwned bool
		want     string
	}{
		{"untagged", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil) }, true, "is not tagged mlstack:stack=demo"},
		{"tagged for another stack", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, cloudfake.StackTagsFor("other", time.Now())) }, true, "mlstack will not adopt"},
		{"tagged without a stack", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, map[string]string{"team": "ml"}) }, true, "is not tagged"},
		{"another account", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil).Foreign = true }, false, "another account or region owns it"},
		{"another region", func(f *cloudfake.FakeAWS) { f.FailNext("HeadBucket", cloudfake.AwsErr("301"), 1) }, false, "another account or region owns it"},
		{"HeadBucket fails", func(f *cloudfake.FakeAWS) { f.FailNext("HeadBucket", cloudfake.AwsErr("InternalError"), 1) }, false, "checking S3 bucket"},
		{"tags unreadable", func(f *cloudfake.FakeAWS) {
			f.AddBucket(n.Bucket, nil)
			f.FailNext("GetBucketTagging", cloudfake.AwsErr("InternalError"), 1)
		}, false, "reading tags of S3 bucket"},
		{"public access block unreadable", func(f *cloudfake.FakeAWS) {
			f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
			f.FailNext("GetPublicAccessBlock", cloudfake.AwsErr("InternalError"), 1)
		}, false, "reading public access block"},
		{"encryption unreadable", func(f *cloudfake.FakeAWS) {
			f.AddBucket(n.Bucket, cloudfake.StackTagsFor("demo", time.Now()))
			f.FailNext("GetBucketEncryption", cloudfake.AwsErr("InternalError"), 1)
		}, false, "reading encryption"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
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
