package provision

// The AWS rules of internal/awsmodel through the fake: the same rules the
// proxy in front of moto applies in cmd/mlstack's tests, here at the SDK
// level, so a lifecycle meets them without an emulator.

import (
	"context"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestFakeEventualConsistency: every new id (group, key pair, instance,
// bucket, instance profile) is unknown for its first use; up retries those
// answers and makes one of everything, a second up changes nothing, down
// leaves nothing.
func TestFakeEventualConsistency(t *testing.T) {
	f := newInstalledFake(t)
	f.Consistency.For = 1
	dir := t.TempDir()
	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if n := len(f.LiveInstances()); n != 1 || f.Count("EC2.RunInstances") < 2 {
		t.Errorf("%d instances after %d launches (the new profile must be refused once):\n%s", n, f.Count("EC2.RunInstances"), log)
	}
	f.ResetCalls()
	o, _, _ = upOpts(dir, "demo")
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) > 0 {
		t.Errorf("second up changed %v", m)
	}
	d, _, _ := downOpts(dir, "demo")
	d.Yes = true
	if err := Down(f.Ctx(), d); err != nil {
		t.Fatal(err)
	}
	if got := f.Owns("demo"); len(got) != 0 {
		t.Errorf("left %v", got)
	}
}

// TestFakeBucketNameStillBusy: after down, S3 keeps the bucket's name for
// two tries; the next up waits, says so once, and succeeds.
func TestFakeBucketNameStillBusy(t *testing.T) {
	f := newInstalledFake(t)
	f.BusyNames.For = 2
	dir := upStack(t, f, "demo")
	d, _, _ := downOpts(dir, "demo")
	d.Yes = true
	if err := Down(f.Ctx(), d); err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if strings.Count(log.String(), "S3 still holds the name") != 1 || f.Count("S3.CreateBucket") != 3 {
		t.Errorf("CreateBucket %d times; progress:\n%s", f.Count("S3.CreateBucket"), log)
	}
}

// TestFakeSlowRDS: a database still creating refuses deletion (each
// describe and refusal stands for time passing, six in all), then shows
// deleting and holds its subnet group until it is gone; down waits it out.
func TestFakeSlowRDS(t *testing.T) {
	f := newInstalledFake(t)
	dir := t.TempDir()
	if log, err := pgUp(t, f, dir, func(o *UpOptions) { o.NoWait = true }); err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.Mu.Lock()
	f.RDSState.Model.Slow = 6
	f.RDSState.Model.Created(n.DB) // as if up had not waited: still creating
	f.Mu.Unlock()
	o, _, log := downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("down: %v\n%s", err, log)
	}
	if f.DB(n.DB) != nil || len(f.RDSState.Subnets) != 0 || f.Count("RDS.DeleteDBInstance") < 2 {
		t.Errorf("down left the database or its subnet group (DeleteDBInstance %d times):\n%s", f.Count("RDS.DeleteDBInstance"), log)
	}
}

// TestFakeSlowTermination: a terminated instance shows pending, then
// shutting-down, before it is terminated; an up meanwhile launches anew
// rather than keep it, and down waits both out and leaves nothing.
func TestFakeSlowTermination(t *testing.T) {
	f := newInstalledFake(t)
	// Slow counts DescribeInstances calls: up's look for its recorded
	// instance is one more, so the termination lasts one more.
	f.Terms.Slow, f.Terms.Stale = 3, 1
	dir := upStack(t, f, "demo")
	old := f.LiveInstances()[0]
	if _, err := f.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{old}}); err != nil {
		t.Fatal(err)
	}
	// Past the pending phase (as TestShuttingDownInstance in cmd/mlstack):
	// the instance now shows shutting-down.
	if _, err := f.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{old}}); err != nil {
		t.Fatal(err)
	}
	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if live := f.LiveInstances(); len(live) != 2 || live[0] != old || !strings.Contains(log.String(), "launching") {
		t.Errorf("live %v after up:\n%s", live, log)
	}
	d, _, dlog := downOpts(dir, "demo")
	d.Yes = true
	if err := Down(f.Ctx(), d); err != nil {
		t.Fatalf("down: %v\n%s", err, dlog)
	}
	if got := f.Owns("demo"); len(got) != 0 {
		t.Errorf("left %v", got)
	}
}
