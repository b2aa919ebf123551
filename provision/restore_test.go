package provision

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// TestChooseBackup: --from takes latest, a folder name, or the folder's
// key or URI; anything else is a usage error naming the newest.
func TestChooseBackup(t *testing.T) {
	t.Parallel()
	complete := []string{"20260101T000000.000000Z", "20260102T000000.000000Z"}
	for _, tt := range []struct {
		from, want string
		usage      bool
	}{
		{from: "latest", want: complete[1]},
		{from: complete[0], want: complete[0]},
		{from: "backups/" + complete[0] + "/", want: complete[0]},
		{from: "s3://bucket/backups/" + complete[0] + "/", want: complete[0]},
		{from: "20250101T000000.000000Z", usage: true},
	} {
		got, err := chooseBackup(tt.from, complete)
		if got != tt.want || (err != nil) != tt.usage || (err != nil && !cloud.IsUsage(err)) {
			t.Errorf("chooseBackup(%q) = %q, %v; want %q (usage error %v)", tt.from, got, err, tt.want, tt.usage)
		}
	}
	if _, err := chooseBackup("latest", nil); err == nil || cloud.IsUsage(err) {
		t.Errorf("no backups: %v, want a plain error", err)
	}
}

// TestPromoteBackup: restore copies the chosen backup to a folder newer
// than every backup, the manifest last, and leaves the old ones be; an
// incomplete folder (no manifest) is no backup.
func TestPromoteBackup(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	ctx := context.Background()
	const bucket = "mlstack-demo-artifacts"
	if _, err := f.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(cloudfake.FakeRegion)}}); err != nil {
		t.Fatal(err)
	}
	put := func(key string) {
		t.Helper()
		_, err := f.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)})
		must(t, err)
	}
	old, newest := "20260101T000000.000000Z", "20990101T000000.000000Z"
	for _, stamp := range []string{old, newest} {
		put(backupPrefix + stamp + "/manifest.json")
		put(backupPrefix + stamp + "/mlflow.db")
	}
	put(backupPrefix + "20990202T000000.000000Z/mlflow.db") // incomplete
	var log bytes.Buffer
	if err := promoteBackup(ctx, f, bucket, old, time.Now(), newProgress(&log)); err != nil {
		t.Fatal(err)
	}
	complete, err := completeBackups(ctx, f, bucket)
	must(t, err)
	if len(complete) != 3 || complete[0] != old || complete[1] != newest || complete[2] <= newest {
		t.Fatalf("backups after the promotion: %v", complete)
	}
	files, err := backupFiles(ctx, f, bucket, complete[2])
	must(t, err)
	if !slices.Equal(files, []string{"mlflow.db", "manifest.json"}) {
		t.Errorf("promoted files %v, want the database then the manifest", files)
	}
	if !strings.Contains(log.String(), "copying backup "+old) {
		t.Errorf("progress: %s", log.String())
	}
}
