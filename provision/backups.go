package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Backups in the stack's bucket: the server writes them (templates/
// mlstack_backup.py) under backups/<UTC stamp>/; up, down --keep-data,
// status and restore list, describe and choose them here.

// backupPrefix is where the server keeps its backups in the bucket.
const backupPrefix = "backups/"

// newestBackup is the newest complete backup in the bucket (its folder
// name, a UTC time) and how many complete ones there are.
func newestBackup(ctx context.Context, api cloud.BackupLister, bucket string) (newest string, count int, err error) {
	complete, err := completeBackups(ctx, api, bucket)
	if len(complete) > 0 {
		newest = complete[len(complete)-1]
	}
	return newest, len(complete), err
}

// backupTime reads a backup's folder name as a time.
func backupTime(stamp string) (time.Time, bool) {
	t, err := time.Parse(backupStamp, stamp)
	return t, err == nil
}

// describeBackup is the newest backup in words.
func describeBackup(newest string, count int, now time.Time) string {
	if count == 0 {
		return "no backup"
	}
	when := newest
	if t, ok := backupTime(newest); ok {
		when = t.Format(time.RFC3339) + ", " + now.Sub(t).Round(time.Second).String() + " ago"
	}
	return fmt.Sprintf("%s of the tracking data (the newest from %s)", cloud.Plural(count, "backup"), when)
}

// keptBackups describes the backups a new server of the stack restores
// (the bucket was kept by down --keep-data), or "" when there are none.
func keptBackups(ctx context.Context, api cloud.BackupLister, bucket string) (string, error) {
	newest, count, err := newestBackup(ctx, api, bucket)
	if err != nil || count == 0 {
		return "", err
	}
	return describeBackup(newest, count, time.Now()), nil
}

// restorePlan says what the new server restores.
func restorePlan(bucket, backups string) []cloud.PlanStep {
	if backups == "" {
		return nil
	}
	return []cloud.PlanStep{cloud.Step(cloud.KindBucket, bucket, "restore the tracking data on the new server from the kept bucket (%s) before it starts", backups)}
}

// readBackups counts the backups in the stack's bucket, if it has one.
func readBackups(ctx context.Context, i *cloud.StackInfo, api cloud.BackupLister) error {
	for _, r := range i.Resources {
		if r.Kind != cloud.KindBucket {
			continue
		}
		newest, count, err := newestBackup(ctx, api, r.Name)
		if err != nil {
			return err
		}
		i.Backups = count
		i.NewestBackup, _ = backupTime(newest)
	}
	return nil
}

// backupsCell is the backups as status shows them.
func backupsCell(i cloud.StackInfo, now time.Time) string {
	if i.Backups == 0 {
		return "none yet (the server backs up within 5 minutes of a change, and when it stops)"
	}
	return fmt.Sprintf("%d, the newest from %s (%s ago)", i.Backups, i.NewestBackup.Format(time.RFC3339), now.Sub(i.NewestBackup).Round(time.Second))
}

// backupStamp is how the server names a backup's folder (UTC).
const backupStamp = "20060102T150405.000000Z"

// backupFiles are the objects of one backup folder, the manifest last.
func backupFiles(ctx context.Context, api cloud.BackupLister, bucket, stamp string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(backupPrefix + stamp + "/")})
	objs, err := cloud.AllPages(ctx, p.HasMorePages, p.NextPage, func(o *s3.ListObjectsV2Output) []s3types.Object { return o.Contents })
	if err != nil {
		return nil, fmt.Errorf("listing backup %s: %w", stamp, err)
	}
	var names []string
	manifest := false
	for _, o := range objs {
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
func completeBackups(ctx context.Context, api cloud.BackupLister, bucket string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(backupPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if cloud.HasCode(err, "NoSuchBucket") {
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
	return "", cloud.Usagef("--from %q is no complete backup of the stack; the newest: %s (or --from latest)", from, strings.Join(shown, ", "))
}
