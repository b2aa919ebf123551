package provision

// mlstack backup: a backup on demand. The server backs up by itself within
// 5 minutes of a change and at every stop (templates/mlstack_backup.py);
// this runs the same backup now, over SSH (it needs up --ssh), and prints
// the backup it stored, checked in the bucket.

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/server"
)

// BackupOptions are what `mlstack backup` takes.
type BackupOptions struct {
	Stack
	cloud.AWS
	Streams
	Remote server.Remote
	// Command replaces the remote command (tests run the backup script
	// itself where the instance runs its unit).
	Command string
}

// backupNow starts the timer's unit and prints what it said.
const backupNow = "sudo systemctl start mlstack-backup.service && sudo journalctl -u mlstack-backup.service -n 20 -o cat --no-pager"

// backedUp finds the backup the script reports storing.
var backedUp = regexp.MustCompile(`mlstack-backup: backed up .* to s3://[^/]+/backups/([0-9T.Z]+)/`)

// Backup runs the server's backup now and prints the backup it stored (or,
// when nothing changed since, the newest one).
func Backup(ctx context.Context, o BackupOptions) error {
	o.Streams.fill()
	t, err := findTarget(ctx, o.Stack, o.AWS)
	if err != nil {
		return err
	}
	n := cloud.NamesFor(o.Stack.Name, t.s.Account, t.s.Region)
	if err := notOnRDS(ctx, t.s, n, "mlstack backup"); err != nil {
		return err
	}
	bucket := n.Bucket
	if why := t.sshReady(); why != "" {
		newest, count, _ := newestBackup(ctx, t.s.S3, bucket)
		return fmt.Errorf("%s. A backup on demand runs over SSH; without it the server backs up within 5 minutes of a change and at every stop (%s)",
			why, describeBackup(newest, count, time.Now()))
	}
	client, err := t.dial(ctx, o.Remote)
	if err != nil {
		return err
	}
	defer client.Close()
	var out bytes.Buffer
	if err := server.Exec(ctx, client, []string{"sh", "-c", cloud.ShellWord(cmp.Or(o.Command, backupNow))}, nil, &out, o.Log); err != nil {
		return fmt.Errorf("the backup on instance %s failed: %w", t.id, err)
	}
	return reportBackup(ctx, o, t, bucket, out.String())
}

// reportBackup prints the stored backup's place, once the bucket shows it
// complete.
func reportBackup(ctx context.Context, o BackupOptions, t *target, bucket, said string) error {
	log := o.Streams.progress()
	stamp := ""
	if m := backedUp.FindAllStringSubmatch(said, -1); len(m) > 0 {
		stamp = m[len(m)-1][1]
	}
	lines := strings.Split(strings.TrimSpace(said), "\n")
	if stamp == "" && strings.Contains(lines[len(lines)-1], "unchanged since the last backup") {
		newest, _, err := newestBackup(ctx, t.s.S3, bucket)
		if err != nil {
			return err
		}
		log.Step("nothing changed since the newest backup")
		stamp = newest
	}
	if stamp == "" {
		return fmt.Errorf("the backup on instance %s did not say what it stored: %s", t.id, lines[len(lines)-1])
	}
	files, err := backupFiles(ctx, t.s.S3, bucket, stamp)
	if err != nil {
		return err
	}
	if len(files) == 0 || files[len(files)-1] != "manifest.json" {
		return fmt.Errorf("backup %s is not complete in s3://%s/%s%s/", stamp, bucket, backupPrefix, stamp)
	}
	fmt.Fprintf(o.Out, "s3://%s/%s%s/\n", bucket, backupPrefix, stamp)
	log.Step("backup %s holds %s; `%s` goes back to it", stamp, strings.Join(files, ", "), hintsFor(o.Stack, o.AWS).cmd("restore", "--from", stamp))
	return nil
}
