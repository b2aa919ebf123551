package provision

// down --keep-data: the stack goes but its bucket stays, with the artifacts
// and the server's backups (backups/, see templates/mlstack_backup.py); a
// later up of the stack adopts the bucket, and its new server restores the
// newest backup before it starts. The instance is stopped first, so that
// its server backs up what changed since the last timed backup.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// stopForBackup stops the running instances and waits until they are
// stopped: a clean stop runs the server's last backup.
func stopForBackup(ctx context.Context, api cloud.StopAPI, ids []string, timeout time.Duration, log *progress) error {
	if len(ids) == 0 {
		return nil
	}
	log.Step("stopping instance %s first: its server backs up what changed since the last backup", strings.Join(ids, ", "))
	if _, err := api.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids}); err != nil {
		return fmt.Errorf("stopping instance %s: %w", strings.Join(ids, ", "), err)
	}
	pace := cloud.WaitsOf(ctx)
	w := ec2.NewInstanceStoppedWaiter(api, func(o *ec2.InstanceStoppedWaiterOptions) { o.MinDelay, o.MaxDelay = pace.PollFirst, pace.PollMax })
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, timeout); err != nil {
		return fmt.Errorf("waiting for instance %s to stop: %w", strings.Join(ids, ", "), err)
	}
	return nil
}

// deletion is how deleteStack goes about one stack.
type deletion struct {
	pending string        // a bucket this machine created and has not tagged yet
	timeout time.Duration // for the instances to stop and terminate
	keep    string        // the bucket to keep (down --keep-data), or ""
	// keepData: down --keep-data (the database's final snapshot is kept too).
	keepData bool
}

// dataFate is what down does with the stack's data beyond its resources,
// each line in words: kept for a later up (down --keep-data), or lost for
// good.
type dataFate struct{ kept, lost []string }

// withoutKept splits what down --keep-data keeps off the stack's
// resources: the bucket (returned) and the database's snapshots.
func withoutKept(rows []cloud.Resource) (rest []cloud.Resource, bucket string) {
	for _, r := range rows {
		switch r.Kind {
		case cloud.KindBucket:
			bucket = r.Name
		case cloud.KindDBSnapshot:
		default:
			rest = append(rest, r)
		}
	}
	return rest, bucket
}

// fateOfData is what down loses for good, or with a kept bucket what it
// keeps and loses.
func (op *openedStack) fateOfData(ctx context.Context, inv *stackInventory, uri, keep string) dataFate {
	if keep == "" {
		return dataFate{lost: append(op.lossLines(ctx, inv, uri), dbLoss(inv)...)}
	}
	if inv.db != nil {
		return dataFate{kept: []string{
			fmt.Sprintf("RDS database %s, as a final snapshot RDS takes before it deletes the database, which a later up restores", op.n.DB),
			fmt.Sprintf("S3 bucket %s: the artifacts, for a later up", keep)}}
	}
	newest, count, err := newestBackup(ctx, op.s.S3, keep)
	backups := describeBackup(newest, count, time.Now())
	if err != nil {
		backups = fmt.Sprintf("its backups (not counted: %v)", err)
	}
	fate := dataFate{kept: []string{fmt.Sprintf("S3 bucket %s: the artifacts and %s, for a later up", keep, backups)}}
	if len(inv.insts) > 0 {
		fate.lost = append(fate.lost, "the runs logged since the server's last backup, if its stop cannot back them up (it tries: down stops it first)")
	}
	return fate
}

// stopStackInstances stops the stack's running instances (never a
// look-alike's) and waits for them.
func stopStackInstances(ctx context.Context, s *cloud.Session, n cloud.Names, timeout time.Duration, log *progress) error {
	insts, _, err := cloud.StackInstances(ctx, s.EC2, n, []string{"pending", "running"})
	if err != nil {
		return err
	}
	var ids []string
	for _, i := range insts {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	return stopForBackup(ctx, s.EC2, ids, timeout, log)
}

// keptBucket says what down --keep-data kept and how to go on.
func (op *openedStack) keptBucket(ctx context.Context, o DownOptions, bucket string, log *progress) {
	h := hintsFor(o.Stack, o.AWS)
	if snaps, err := cloud.StackSnapshots(ctx, op.s.RDS, op.n); err == nil && len(snaps) > 0 {
		log.Step("kept S3 bucket %s with the artifacts, and RDS snapshot %s of the database: `%s` makes the stack again and restores the database from it; `%s` deletes both",
			bucket, aws.ToString(snaps[0].DBSnapshotIdentifier), h.cmd("up"), h.cmd("down", "--yes"))
		return
	}
	newest, count, err := newestBackup(ctx, op.s.S3, bucket)
	what := describeBackup(newest, count, time.Now())
	if err != nil {
		what = fmt.Sprintf("backups not counted (%v)", err)
	}
	log.Step("kept S3 bucket %s with the artifacts and %s: `%s` makes the stack again and its server restores the newest; `%s` deletes the bucket",
		bucket, what, h.cmd("up"), h.cmd("down", "--yes"))
}
