//go:build boottest

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/mlstack/mlstack/internal/pgtest"
)

// phaseReplaceByKeep: `mlstack down --keep-data`, then `mlstack up`: the
// stack is made again around its kept bucket (and, with PostgreSQL, its
// final snapshot, restored with a new master password), and the new
// server has every run, artifact and user.
func (b *bootTest) phaseReplaceByKeep(t *testing.T) {
	before := b.change(t, "dave")
	b.backupThenStop(t, before)
	oldPassword := b.dbPassword(t)
	b.mlstack(t, "down", "--keep-data", "--yes")
	// The bucket stays with the artifacts and (sqlite) the backups,
	// the one the clean stop made included.
	kept := b.bucketExists(t) && (b.cfg.db == "postgres" || b.backups(t) == before+1)
	if !kept {
		t.Fatalf("down --keep-data did not keep the bucket %s with its backups", b.bucket)
	}
	if b.cfg.db == "postgres" && len(b.finalSnapshots(t)) != 1 {
		t.Fatalf("down --keep-data kept %d final snapshots, want 1", len(b.finalSnapshots(t)))
	}
	from := b.rec.since()
	// alice's password left with the local state: the restored server
	// has her with the old one, which up does not reset (it says what to run).
	b.takenLogin = "alice"
	b.launchUp(t, "--artifacts", "proxied")
	b.findInstance(t)
	s := b.nextBoot(t)
	if b.cfg.db == "sqlite" && s.NewestBackup == nil {
		t.Fatal("up made the stack again without seeing the kept backups (newest_backup null)")
	}
	if b.cfg.db == "postgres" {
		b.checkRestoredDB(t, from, oldPassword)
	}
	b.checkReplaced(t, "alice", "bob", "carol", "dave")
}

// dbPassword is the database's master password in SSM ("" with sqlite).
func (b *bootTest) dbPassword(t *testing.T) string {
	if b.cfg.db != "postgres" {
		return ""
	}
	name := "/mlstack/" + bootStack + "/db-password"
	out, err := ssm.NewFromConfig(b.aws).GetParameter(context.Background(), &ssm.GetParameterInput{Name: &name, WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// finalSnapshots are the stack's database snapshots down --keep-data made.
func (b *bootTest) finalSnapshots(t *testing.T) []string {
	out, err := rds.NewFromConfig(b.aws).DescribeDBSnapshots(context.Background(), &rds.DescribeDBSnapshotsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range out.DBSnapshots {
		if id := aws.ToString(s.DBSnapshotIdentifier); strings.HasPrefix(id, "mlstack-"+bootStack+"-final-") {
			ids = append(ids, id)
		}
	}
	return ids
}

// checkRestoredDB: up restored the database from the kept snapshot and
// gave it a new master password (the calls it made after from), and the
// new server set the restored admin's password to the stack's.
func (b *bootTest) checkRestoredDB(t *testing.T, from int, oldPassword string) {
	db := "mlstack-" + bootStack
	if len(b.rec.find(from, "RestoreDBInstanceFromDBSnapshot", "DBSnapshotIdentifier", db+"-final-")) != 1 {
		t.Fatal("up did not restore the database from its kept snapshot")
	}
	set := b.rec.find(from, "ModifyDBInstance", "MasterUserPassword", "")
	if len(set) != 1 || set[0].params.Get("DBInstanceIdentifier") != db {
		t.Fatalf("up set the master password %d times, want once on %s", len(set), db)
	}
	if p := b.dbPassword(t); p == oldPassword || p != set[0].params.Get("MasterUserPassword") {
		t.Fatal("the restored database's master password is not a new one, the one in SSM")
	}
	b.journalHas(t, "mlflow.service", "mlstack-backup: restore: the admin's password in the database set to the stack's", "the restored admin")
}

// startRDS: a private cluster of Debian's PostgreSQL on 127.0.0.2:5432
// standing in for the RDS database (SSL-only password logins, as RDS:
// internal/pgtest), and scripts/boot/rds.py, which plays RDS's part for
// the stack's database in moto (master user, password, endpoint).
func (b *bootTest) startRDS(t *testing.T) {
	b.pg = pgtest.StartAt(t, rdsAddr, 5432)
	log, err := os.Create(filepath.Join(b.work, "rds.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(b.venv, "bin", "python"), filepath.Join(b.repo, "scripts", "boot", "rds.py"),
		bootStack, b.pg.SocketDir(), filepath.Join(b.work, "rds-host"), b.secretFile())
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "AWS_ENDPOINT_URL=" + b.moto, "AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=" + bootRegion, "AWS_EC2_METADATA_DISABLED=true"}
	cmd.Stdout, cmd.Stderr = log, log
	b.startProc(t, t, cmd)
	t.Logf("PostgreSQL on %s:%d (SSL only) plays the RDS database", rdsAddr, b.pg.Port)
}

// rdsHost: the database's endpoint, as moto gives it, resolves to the
// stand-in inside the container.
func (b *bootTest) rdsHost(t *testing.T, root string) {
	host := b.rdsEndpoint(t)
	f, err := os.OpenFile(filepath.Join(root, "etc", "hosts"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644) // the rootfs may have none
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(rdsAddr + " " + host + "\n"); err != nil {
		t.Fatal(err)
	}
}

// rdsEndpoint is the host name rds.py read from moto.
func (b *bootTest) rdsEndpoint(t *testing.T) string {
	for i := 0; i < 100; i++ {
		if data, err := os.ReadFile(filepath.Join(b.work, "rds-host")); err == nil && len(data) > 0 {
			return strings.TrimSpace(string(data))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the stack's RDS database has no endpoint in moto\n%s", b.tail(filepath.Join(b.work, "rds.log"), 20))
	return ""
}

// phasePostgres: the runs and the users are in PostgreSQL, over SSL; the
// instance holds no database; backups have nothing to do.
func (b *bootTest) phasePostgres(t *testing.T) {
	runs, _ := strconv.Atoi(b.pg.Query(t, "mlflow", "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'"))
	users := " " + b.pg.Query(t, "mlflow", "SELECT string_agg(username, ' ' ORDER BY username) FROM users") + " "
	ssl, _ := strconv.Atoi(b.pg.Query(t, "mlflow", "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'mlflow' AND ssl"))
	if runs < 1 {
		t.Fatal("no run in PostgreSQL")
	}
	if !strings.Contains(users, " alice ") || !strings.Contains(users, " bob ") {
		t.Fatalf("the MLflow users are not in PostgreSQL:%s", users)
	}
	if ssl < 1 {
		t.Fatal("the server's connections to PostgreSQL are not over SSL")
	}
	if _, err := b.inContainer(t, nil, "test", "!", "-e", "/var/lib/mlflow/mlflow.db"); err != nil {
		t.Fatal("the instance has a sqlite database as well")
	}
	b.journalHas(t, "mlflow.service", "mlstack-keys: database: PostgreSQL "+b.rdsEndpoint(t)+":5432, database mlflow, user mlflow, SSL required", "the database from SSM")
	b.must(t, "systemctl", "start", "mlstack-backup.service")
	b.journalHas(t, "mlstack-backup.service", "mlstack-backup: backup: nothing to do: the tracking data is in PostgreSQL", "the backup")
	t.Logf("%d run(s) and users%sin PostgreSQL, %d SSL connection(s) of the server; no sqlite on the instance", runs, users, ssl)
}
