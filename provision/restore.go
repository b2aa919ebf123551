package provision

// mlstack restore --from BACKUP|latest: a replacement whose new server
// restores a chosen backup. The old instance is stopped first (its server
// backs up what it has, so nothing is lost: that backup stays), then the
// chosen backup is copied to the newest place under backups/, which the
// new server restores before it starts; the old instance goes once the new
// server answers.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// backupStamp is how the server names a backup's folder (UTC).
const backupStamp = "20060102T150405.000000Z"

// copyAPI copies a backup's objects within the bucket.
type copyAPI interface {
	backupLister
	CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
}

// backupFiles are the objects of one backup folder, the manifest last.
func backupFiles(ctx context.Context, api backupLister, bucket, stamp string) ([]string, error) {
	out, err := api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(backupPrefix + stamp + "/")})
	if err != nil {
		return nil, fmt.Errorf("listing backup %s: %w", stamp, err)
	}
	var names []string
	manifest := false
	for _, o := range out.Contents {
		name := strings.TrimPrefix(aws.ToString(o.Key), backupPrefix+stamp+"/")
		if name == "manifest.json" {
			manifest = true
			continue
		}
		names = append(names, name)
	}
	if manifest { // last: it marks the copy complete
		names = append(names, "manifest.json")
	}
	return names, nil
}

// completeBackups are the folder names of the complete backups, oldest
// first (none when the bucket is gone).
func completeBackups(ctx context.Context, api backupLister, bucket string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(backupPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if hasCode(err, "NoSuchBucket") {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing the backups in s3://%s/%s: %w", bucket, backupPrefix, err)
		}
		for _, o := range page.Contents {
			if stamp, ok := strings.CutSuffix(strings.TrimPrefix(aws.ToString(o.Key), backupPrefix), "/manifest.json"); ok && !strings.Contains(stamp, "/") {
				out = append(out, stamp)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// chooseBackup resolves --from: latest, a folder name, or its key.
func chooseBackup(from string, complete []string) (string, error) {
	if len(complete) == 0 {
		return "", fmt.Errorf("the stack's bucket holds no complete backup yet (the server makes one within 5 minutes of a change)")
	}
	if from == "latest" {
		return complete[len(complete)-1], nil
	}
	stamp := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(from, "s3://"), backupPrefix), "/")
	if i := strings.LastIndex(stamp, backupPrefix); i >= 0 { // s3://bucket/backups/STAMP/
		stamp = strings.TrimSuffix(stamp[i+len(backupPrefix):], "/")
	}
	if slices.Contains(complete, stamp) {
		return stamp, nil
	}
	shown := complete[max(0, len(complete)-5):]
	return "", usagef("--from %q is no complete backup of the stack; the newest: %s (or --from latest)", from, strings.Join(shown, ", "))
}

// promoteBackup copies backup stamp to a new folder newer than every
// backup (the one the old server made when it stopped included), the
// manifest last, so that the new server restores it.
func promoteBackup(ctx context.Context, api copyAPI, bucket, stamp string, now time.Time, log *progress) error {
	complete, err := completeBackups(ctx, api, bucket)
	if err != nil {
		return err
	}
	next := now.UTC()
	if len(complete) > 0 {
		if t, ok := backupTime(complete[len(complete)-1]); ok && !next.After(t) {
			next = t.Add(time.Microsecond)
		}
	}
	to := next.Format(backupStamp)
	names, err := backupFiles(ctx, api, bucket, stamp)
	if err != nil {
		return err
	}
	log.Step("copying backup %s to %s, the newest, for the new server to restore", stamp, to)
	for _, name := range names {
		_, err := api.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(backupPrefix + to + "/" + name),
			CopySource: aws.String(bucket + "/" + backupPrefix + stamp + "/" + name)})
		if err != nil {
			return fmt.Errorf("copying backup %s/%s: %w", stamp, name, err)
		}
	}
	return nil
}

// RestoreOptions are what `mlstack restore` takes.
type RestoreOptions struct {
	Stack
	AWS
	Streams
	From    string // a backup's folder name (or key), or "latest"
	Timeout time.Duration
	Yes     bool
	Confirm func(prompt string) (bool, error)
}

// Restore replaces the stack's instance with one whose server starts from
// a chosen backup, keeping the stack's settings as they are.
func Restore(ctx context.Context, o RestoreOptions) error {
	if o.From == "" {
		return usagef("--from: which backup, its folder name under backups/ (status shows the newest) or latest")
	}
	var stamp string
	uo, err := stackAsIs(ctx, o.Stack, o.AWS, o.Streams, "restore into", func(op *openedStack) error {
		if err := notOnRDS(ctx, op.s, op.n, "mlstack restore"); err != nil {
			return err
		}
		complete, err := completeBackups(ctx, op.s.s3, op.n.Bucket)
		if err == nil {
			stamp, err = chooseBackup(o.From, complete)
		}
		return err
	})
	if err != nil {
		return err
	}
	uo.Timeout, uo.Yes, uo.Confirm, uo.restoreFrom = o.Timeout, o.Yes, o.Confirm, stamp
	return Up(ctx, uo)
}
