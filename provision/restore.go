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
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// promoteBackup copies backup stamp to a new folder newer than every
// backup (the one the old server made when it stopped included), the
// manifest last, so that the new server restores it.
func promoteBackup(ctx context.Context, api cloud.CopyAPI, bucket, stamp string, now time.Time, log *progress) error {
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
	cloud.AWS
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
		return cloud.Usagef("--from: which backup, its folder name under backups/ (status shows the newest) or latest")
	}
	var stamp string
	uo, err := stackAsIs(ctx, o.Stack, o.AWS, o.Streams, "restore into", func(op *openedStack) error {
		if err := notOnRDS(ctx, op.s, op.n, "mlstack restore"); err != nil {
			return err
		}
		complete, err := completeBackups(ctx, op.s.S3, op.n.Bucket)
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
