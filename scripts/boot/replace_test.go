//go:build boottest

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// phaseBackup: the backup timer is on; a backup run now stores both
// databases under backups/, and `mlstack status` sees it.
func (b *bootTest) phaseBackup(t *testing.T) {
	b.must(t, "systemctl", "is-enabled", "mlstack-backup.timer")
	b.must(t, "systemctl", "is-active", "mlstack-backup.timer")
	b.must(t, "systemctl", "start", "mlstack-backup.service")
	for _, l := range strings.Split(b.journal(t, "mlstack-backup.service"), "\n") {
		if strings.Contains(l, "mlstack-backup: backed up") {
			b.backupLine = l
		}
	}
	if b.backupLine == "" {
		t.Fatal("mlstack-backup.service did not back up")
	}
	keys, err := objectKeys(context.Background(), b.aws, b.bucket, "backups/")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"manifest.json", "mlflow.db.gz", "basic_auth.db.gz"} {
		if countFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/"+f) }) == 0 {
			t.Fatalf("no %s of a backup in s3://%s/backups/: %v", f, b.bucket, keys)
		}
	}
	if s := b.checkStack(t, []byte(b.mlstack(t, "status", "--output", "json"))); s.NewestBackup == nil {
		t.Fatal("status --output json: newest_backup is null after a backup")
	}
	t.Log(b.backupLine)
}

// change makes a change of the tracking data since the last backup (a
// new MLflow user), before an up holds the stack's lock, and returns how
// many complete backups there are.
func (b *bootTest) change(t *testing.T, user string) int {
	b.mlstack(t, "users", "add", user)
	b.addStateSecrets(t)
	return b.backups(t)
}

// backups is the number of complete backups (manifests) in the bucket.
func (b *bootTest) backups(t *testing.T) int {
	keys, err := objectKeys(context.Background(), b.aws, b.bucket, "backups/")
	if err != nil {
		t.Fatal(err)
	}
	return countFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/manifest.json") })
}

// backupThenStop: the instance stops cleanly, as EC2's stop makes it: its
// server backs up the change after it stops (with PostgreSQL: nothing to
// back up). Its disk is kept aside (for the secret scan); its IMDS
// emulator and /etc/hosts line go.
func (b *bootTest) backupThenStop(t *testing.T, before int) {
	b.stopped = time.Now()
	b.stopContainer(t)
	want := 1
	if b.cfg.db == "postgres" {
		want = 0 // the data is in PostgreSQL
	}
	if n := b.backups(t) - before; n != want {
		t.Fatalf("the clean stop made %d backups, want %d", n, want)
	}
	old := filepath.Join(b.work, "rootfs-"+b.inst.id)
	if err := os.Rename(b.box.root, old); err != nil {
		t.Fatal(err)
	}
	for i, k := range b.privateKeys {
		if rest, ok := strings.CutPrefix(k, b.box.root+"/"); ok {
			b.privateKeys[i] = filepath.Join(old, rest)
		}
	}
	b.box = nil
	b.imds.stop(t, 10*time.Second)
	b.removeHostsLine(t)
}

// nextBoot: the new instance boots from a fresh rootfs; its server
// restores the newest backup before it starts (with PostgreSQL: it has
// nothing to restore); up pins it and answers.
func (b *bootTest) nextBoot(t *testing.T) stackJSON {
	b.startIMDS(t)
	b.bootContainer(t)
	b.waitHealthy(t)
	b.replacedIn = append(b.replacedIn, fmt.Sprintf("%.1f", time.Since(b.stopped).Seconds()))
	s := b.checkUpResult(t)
	if b.cfg.db == "postgres" {
		// Nothing to restore; an upgrade (checkSchemaUpgraded) says so its own way.
		if j := b.journal(t, "mlflow.service"); !strings.Contains(j, "mlstack-backup: restore: nothing to do: the tracking data is in PostgreSQL") &&
			!strings.Contains(j, "mlstack-backup: restore: the tracking schema is at ") {
			t.Fatal("the new server's journal has neither PostgreSQL's no-op restore nor its schema upgrade")
		}
	} else {
		b.journalHas(t, "mlflow.service", "mlstack-backup: restored backup", "the new server's restore")
	}
	return s
}

// phaseReplaceByUp: `mlstack up --instance-type t3.micro --yes` replaces
// the live instance; when it runs another MLflow than the locked one,
// `mlstack upgrade --yes` does, and the restore upgrades the data's
// schema. The test plays EC2: once up has stopped the old instance in
// moto, the container stops cleanly; then the new instance boots. up
// terminates the old one only after the new server answered.
func (b *bootTest) phaseReplaceByUp(t *testing.T) {
	old, upgrading := b.inst.id, b.mlflow != b.cfg.locked
	before := b.change(t, "carol")
	if upgrading {
		b.launch(t, "upgrade", "--timeout", "15m", "--yes")
	} else {
		b.launchUp(t, "--instance-type", "t3.micro", "--yes")
	}
	b.waitStopped(t, old)
	b.backupThenStop(t, before)
	b.findInstance(t)
	if b.inst.id == old {
		t.Fatal("up launched no new instance")
	}
	s := b.nextBoot(t)
	if upgrading {
		b.mlflow = b.cfg.locked // the stack runs the locked one now
		b.checkSchemaUpgraded(t)
		b.checkVersion(t)
	} else if s.Instance.Type != "t3.micro" {
		t.Fatalf("the new instance is a %s, want t3.micro", s.Instance.Type)
	}
	if st := b.instanceState(t, old); st != ec2types.InstanceStateNameTerminated {
		t.Fatalf("the old instance %s is %s, want terminated", old, st)
	}
	b.checkReplaced(t, "alice", "bob", "carol")
}

// checkSchemaUpgraded: the new server brought the older MLflow's data to
// its own schema: with sqlite the restore upgrades the backup; with
// PostgreSQL the database RDS keeps is upgraded in place at the start
// (or is at the new head already, when the two releases share it).
func (b *bootTest) checkSchemaUpgraded(t *testing.T) {
	if b.cfg.db != "postgres" {
		b.journalHas(t, "mlflow.service", "mlstack-backup: backup made by MLflow "+b.cfg.mlflowVersion+", this is "+b.cfg.locked+": upgrading the schema", "the restore's upgrade")
		return
	}
	journal := b.journal(t, "mlflow.service")
	for _, line := range []string{"mlstack-backup: restore: the tracking schema is at ", "its schema is at this MLflow's head ("} {
		if strings.Contains(journal, line) {
			t.Logf("PostgreSQL after the upgrade from %s: %q", b.cfg.mlflowVersion, line)
			return
		}
	}
	t.Fatal("the new server's journal shows no schema step for the PostgreSQL data (upgraded, or at the head already)")
}

// waitStopped waits until up has stopped instance id in moto.
func (b *bootTest) waitStopped(t *testing.T, id string) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if b.instanceState(t, id) == ec2types.InstanceStateNameStopped {
			return
		}
		if !b.up.running() {
			b.waitUp(t)
			t.Fatalf("mlstack %s exited without stopping %s", b.up.cmd.Args[1], id)
		}
	}
	t.Fatalf("up never stopped the old instance %s", id)
}

func (b *bootTest) instanceState(t *testing.T, id string) ec2types.InstanceStateName {
	out, err := ec2.NewFromConfig(b.aws).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		t.Fatalf("describing %s: %v", id, err)
	}
	return out.Reservations[0].Instances[0].State.Name
}

// bucketExists: the stack bucket is in moto.
func (b *bootTest) bucketExists(t *testing.T) bool {
	_, err := s3Client(b.aws).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(b.bucket)})
	return err == nil
}

// checkReplaced: the real client, as alice, finds every run, metric and
// artifact of the first server (scripts/boot/replaced.py); the users are
// there (the admin's password works on the restored user database: users
// list goes through it).
func (b *bootTest) checkReplaced(t *testing.T, users ...string) {
	b.envFile(t, "env-replaced.sh")
	var facts struct {
		Runs int `json:"runs"`
	}
	b.python(t, "env-replaced.sh", "replaced", &facts)
	have := b.users(t)
	for _, u := range users {
		if !strings.HasPrefix(have[u], "user") {
			t.Fatalf("user %s is not on the new server: %v", u, have)
		}
	}
	backup := b.backupLine
	if backup == "" {
		backup = "none: the data is in PostgreSQL"
	}
	t.Logf("replaced (clean stop to healthy: %s s); %d runs, metrics, artifacts and users %v all there; backup: %s",
		strings.Join(b.replacedIn, " s, "), facts.Runs, users, backup)
}
