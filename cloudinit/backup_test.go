package cloudinit

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/templates"
)

// backupRig runs templates/mlstack_backup.py as the unit and the timer do,
// with the pinned MLflow venv's Python, against moto's S3 and SSM.
type backupRig struct {
	*keysRig
	s3     *s3.Client
	bucket string
	data   string // MLSTACK_DATA_DIR
	script string
}

func newBackupRig(t *testing.T) *backupRig {
	t.Helper()
	k := newKeysRig(t)
	r := &backupRig{keysRig: k, bucket: fmt.Sprintf("mlstack-backup-test-%d", time.Now().UnixNano()),
		data: filepath.Join(t.TempDir(), "data"), script: filepath.Join(t.TempDir(), "mlstack_backup.py")}
	r.s3 = s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(k.motoURL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	src, err := templates.FS.ReadFile("mlstack_backup.py")
	must(t, err)
	must(t, os.WriteFile(r.script, src, 0o644))
	must(t, os.Mkdir(r.data, 0o700))
	_, err = r.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(r.bucket)})
	must(t, err)
	t.Cleanup(r.removeBucket)
	return r
}

// run runs `mlstack_backup.py verb` and returns its stderr.
func (r *backupRig) run(verb string, env ...string) (string, error) {
	return r.runWith(r.python, verb, env...)
}

// runWith runs it with another Python (another MLflow's venv).
func (r *backupRig) runWith(python, verb string, env ...string) (string, error) {
	cmd := exec.Command(python, r.script, verb)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + r.t.TempDir(), "MLSTACK_DATA_DIR=" + r.data,
		"MLSTACK_BACKUPS=s3://" + r.bucket + "/backups/", "MLSTACK_PARAM_PATH=" + r.path, "MLSTACK_ADMIN_USERNAME=admin",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL=" + r.motoURL, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// py runs Python code with the venv's Python in the data dir.
func (r *backupRig) py(code string, args ...string) string {
	r.t.Helper()
	return r.pyWith(r.python, code, args...)
}

// pyWith runs Python code with another Python in the data dir.
func (r *backupRig) pyWith(python, code string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(python, append([]string{"-c", code}, args...)...)
	cmd.Dir = r.data
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("python: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// keys lists the objects under backups/.
func (r *backupRig) keys() []string {
	r.t.Helper()
	out, err := r.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(r.bucket), Prefix: aws.String("backups/")})
	must(r.t, err)
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	slices.Sort(ks)
	return ks
}

// stamps are the backups' folders, and which of them are complete.
func (r *backupRig) stamps() (all, complete []string) {
	seen := map[string]bool{}
	for _, k := range r.keys() {
		stamp := strings.Split(k, "/")[1]
		if !seen[stamp] {
			all, seen[stamp] = append(all, stamp), true
		}
		if strings.HasSuffix(k, "/manifest.json") {
			complete = append(complete, stamp)
		}
	}
	return all, complete
}

func (r *backupRig) removeBucket() {
	ctx := context.Background()
	out, _ := r.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(r.bucket)})
	var objs []s3types.ObjectIdentifier
	for _, o := range out.Contents {
		objs = append(objs, s3types.ObjectIdentifier{Key: o.Key})
	}
	if len(objs) > 0 {
		_, _ = r.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(r.bucket), Delete: &s3types.Delete{Objects: objs}})
	}
	if _, err := r.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(r.bucket)}); err != nil {
		r.t.Errorf("bucket %s left in moto: %v", r.bucket, err)
	}
}

// TestBackupAndRestore: a real MLflow tracking database and a basic-auth
// database are backed up when they change (not when they do not), pruned
// to the newest KEEP; a backup killed before its manifest is never
// restored and the next backup is whole; a new instance restores the
// newest complete backup, its schema upgraded for another MLflow version,
// with the admin's password from SSM; a tampered backup is refused.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	r := newBackupRig(t)
	r.putSecrets("the-new-admin-password-1", "a-flask-key")
	if out, err := r.run("restore"); err != nil || !strings.Contains(out, "a new stack") || r.exists("mlflow.db") {
		t.Fatalf("restore with no backup: %v\n%s", err, out)
	}
	// The server's databases: MLflow's own schema, a run, an admin.
	r.py(`import sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as Auth
s = SqlAlchemyStore("sqlite:///mlflow.db", "/tmp/artifacts")
e = s.create_experiment("kept")
s.create_run(e, "u", 0, [], "kept-run")
a = Auth(); a.init_db("sqlite:///basic_auth.db"); a.create_user("admin", "the-old-admin-password", is_admin=True)`)

	out, err := r.run("backup")
	if _, complete := r.stamps(); err != nil || len(complete) != 1 || !strings.Contains(out, "backed up mlflow.db, basic_auth.db") {
		t.Fatalf("first backup: %v, complete %v\n%s", err, complete, out)
	}
	if out, err := r.run("backup"); err != nil || !strings.Contains(out, "unchanged") || len(r.keys()) != 3 {
		t.Errorf("unchanged data backed up again: %v, %d objects\n%s", err, len(r.keys()), out)
	}
	for i := range 3 { // two more changes than KEEP allows
		r.py(fmt.Sprintf(`from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
SqlAlchemyStore("sqlite:///mlflow.db", "/tmp/artifacts").create_experiment("more-%d")`, i))
		if out, err := r.run("backup", "MLSTACK_BACKUP_KEEP=2"); err != nil {
			t.Fatalf("backup %d: %v\n%s", i, err, out)
		}
	}
	all, complete := r.stamps()
	if len(all) != 2 || len(complete) != 2 {
		t.Errorf("after 4 backups with KEEP=2: %d backups, %d complete", len(all), len(complete))
	}

	// A backup killed before its manifest: never restored, pruned by the next.
	killed := time.Now().UTC().Format("20060102T150405.000000Z") // newer than every complete one
	time.Sleep(10 * time.Millisecond)
	_, err = r.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(r.bucket),
		Key: aws.String("backups/" + killed + "/mlflow.db.gz"), Body: strings.NewReader("half a gzip")})
	must(t, err)
	r.restoreInto(t, "more-2", "3.17.2")

	// Restore into a new instance: the newest complete backup, checked,
	// upgraded when another MLflow made it, the admin's password from SSM.
	r.setManifestVersion(complete[len(complete)-1], "3.16.0")
	out = r.restoreInto(t, "more-2", "3.16.0")
	if !strings.Contains(out, "upgrading the schema") {
		t.Errorf("no schema upgrade for a backup of MLflow 3.16.0:\n%s", out)
	}
	if ok := r.py(`import sqlite3, sys
from werkzeug.security import check_password_hash
h = sqlite3.connect("basic_auth.db").execute("select password_hash from users where username='admin'").fetchone()[0]
print(check_password_hash(h, "the-new-admin-password-1"), check_password_hash(h, "the-old-admin-password"))`); ok != "True False" {
		t.Errorf("restored admin password: new, old = %s; want the one in SSM only", ok)
	}

	// The next backup is whole and prunes the killed one.
	if out, err := r.run("backup", "MLSTACK_BACKUP_KEEP=2"); err != nil || slices.Contains(func() []string { a, _ := r.stamps(); return a }(), killed) {
		t.Errorf("the backup after the restore: %v, the killed one is still there\n%s", err, out)
	}

	// A tampered backup: refused, nothing put in place.
	_, complete = r.stamps()
	newest := complete[len(complete)-1]
	_, err = r.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(r.bucket),
		Key: aws.String("backups/" + newest + "/mlflow.db.gz"), Body: strings.NewReader("not the bytes the manifest names")})
	must(t, err)
	r.clearData()
	if out, err := r.run("restore"); err == nil || !strings.Contains(out, "does not match its manifest") || r.exists("mlflow.db") {
		t.Errorf("a tampered backup: %v, database placed %v\n%s", err, r.exists("mlflow.db"), out)
	}
}

func (r *backupRig) exists(name string) bool {
	_, err := os.Stat(filepath.Join(r.data, name))
	return err == nil
}

func (r *backupRig) clearData() {
	r.t.Helper()
	entries, err := os.ReadDir(r.data)
	must(r.t, err)
	for _, e := range entries {
		must(r.t, os.RemoveAll(filepath.Join(r.data, e.Name())))
	}
}

// restoreInto empties the data dir (a new instance), restores, and checks
// that the newest experiment is there; it returns restore's output.
func (r *backupRig) restoreInto(t *testing.T, newest, version string) string {
	t.Helper()
	r.clearData()
	out, err := r.run("restore")
	if err != nil || !strings.Contains(out, "restored backup") || !strings.Contains(out, "(MLflow "+version+")") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	names := r.py(`from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.entities import ViewType
s = SqlAlchemyStore("sqlite:///mlflow.db", "/tmp/artifacts")
print(" ".join(sorted(e.name for e in s.search_experiments(view_type=ViewType.ALL))), len(s.search_runs(["1"], "", ViewType.ALL)))`)
	if !strings.Contains(names, "kept") || !strings.Contains(names, newest) || !strings.HasSuffix(names, " 1") {
		t.Errorf("restored experiments and runs: %s", names)
	}
	if fi, err := os.Stat(filepath.Join(r.data, "mlflow.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored mlflow.db: %v", err)
	}
	return out
}

// setManifestVersion rewrites a backup's manifest as if another MLflow made it.
func (r *backupRig) setManifestVersion(stamp, version string) {
	r.t.Helper()
	ctx := context.Background()
	key := "backups/" + stamp + "/manifest.json"
	got, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
	must(r.t, err)
	defer got.Body.Close()
	raw, err := io.ReadAll(got.Body)
	must(r.t, err)
	body := strings.Replace(string(raw), `"mlflow_version": "`+DefaultMLflowVersion+`"`, `"mlflow_version": "`+version+`"`, 1)
	if body == string(raw) {
		r.t.Fatalf("manifest has no mlflow_version %s: %s", DefaultMLflowVersion, body)
	}
	_, err = r.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	must(r.t, err)
}

// TestBackupKilledMidway: a backup killed (SIGKILL) after it stored one
// database and before its manifest leaves the previous backup usable: a
// new instance restores that one; the next backup is whole and removes the
// torn one.
func TestBackupKilledMidway(t *testing.T) {
	t.Parallel()
	r := newBackupRig(t)
	r.putSecrets("an-admin-password-9", "a-flask-key")
	// basic_auth.db, backed up second, is large: the kill lands while it
	// is compressed or uploaded, after mlflow.db is stored.
	r.py(`import os, sqlite3
t = sqlite3.connect("mlflow.db"); t.execute("create table runs (name text)"); t.execute("insert into runs values ('first')"); t.commit()
a = sqlite3.connect("basic_auth.db")
a.execute("create table users (id integer primary key, username text, password_hash text, is_admin boolean)")
a.execute("insert into users (username, password_hash, is_admin) values ('admin', 'x', 1)")
a.execute("create table bulk (b blob)")
for _ in range(48):
    a.execute("insert into bulk values (?)", (os.urandom(1 << 20),))
a.commit()`)
	if out, err := r.run("backup"); err != nil {
		t.Fatalf("first backup: %v\n%s", err, out)
	}
	_, first := r.stamps()
	r.py(`import sqlite3
t = sqlite3.connect("mlflow.db"); t.execute("insert into runs values ('second')"); t.commit()`)

	cmd := exec.Command(r.python, r.script, "backup")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "MLSTACK_DATA_DIR=" + r.data, "MLSTACK_BACKUPS=s3://" + r.bucket + "/backups/",
		"MLSTACK_PARAM_PATH=" + r.path, "MLSTACK_ADMIN_USERNAME=admin", "AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL=" + r.motoURL,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}
	must(t, cmd.Start())
	killed := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !killed; time.Sleep(20 * time.Millisecond) {
		for _, k := range r.keys() {
			if strings.HasSuffix(k, "/mlflow.db.gz") && !strings.Contains(k, first[0]) {
				must(t, cmd.Process.Kill())
				killed = true
				break
			}
		}
	}
	_ = cmd.Wait()
	all, complete := r.stamps()
	if !killed || len(all) != 2 || len(complete) != 1 {
		t.Fatalf("the kill did not land between the first database and the manifest: killed %v, backups %v, complete %v", killed, all, complete)
	}

	// A new instance: the complete backup, without the second run.
	keep := filepath.Join(t.TempDir(), "mlflow.db")
	must(t, os.Rename(filepath.Join(r.data, "mlflow.db"), keep))
	r.clearData()
	if out, err := r.run("restore"); err != nil || !strings.Contains(out, "restored backup "+first[0]) {
		t.Fatalf("restore after a torn backup: %v\n%s", err, out)
	}
	if got := r.py(`import sqlite3; print(",".join(r[0] for r in sqlite3.connect("mlflow.db").execute("select name from runs")))`); got != "first" {
		t.Errorf("restored runs %q, want the first backup's", got)
	}

	// The next backup is whole and removes the torn one.
	must(t, os.Rename(keep, filepath.Join(r.data, "mlflow.db")))
	if out, err := r.run("backup"); err != nil {
		t.Fatalf("the backup after the kill: %v\n%s", err, out)
	}
	all, complete = r.stamps()
	if len(all) != 2 || len(complete) != 2 {
		t.Errorf("after the next backup: backups %v, complete %v; want the first and a whole new one", all, complete)
	}
}

// TestRestoreUpgradesOlderData: data an older MLflow (3.16.1) wrote and
// backed up, restored by the locked one, is upgraded to the locked one's
// schema (two migrations between them) before anything opens it, and then
// opens with its runs and metrics.
func TestRestoreUpgradesOlderData(t *testing.T) {
	t.Parallel()
	oldVenv := os.Getenv("MLSTACK_TEST_MLFLOW_OLD_VENV")
	if oldVenv == "" {
		testenv.Missing(t, "no older MLflow venv (MLSTACK_TEST_MLFLOW_OLD_VENV is not set; scripts/test.sh makes one)")
	}
	r := newBackupRig(t)
	r.putSecrets("the-admin-password-7", "a-flask-key")
	oldPy := filepath.Join(oldVenv, "bin", "python")
	if v := r.pyWith(oldPy, `import importlib.metadata as m; print(m.version("mlflow"))`); v == DefaultMLflowVersion {
		t.Fatalf("the older venv holds MLflow %s, the locked version", v)
	}
	r.pyWith(oldPy, `from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as Auth
from mlflow.entities import Metric
s = SqlAlchemyStore("sqlite:///mlflow.db", "/tmp/artifacts")
e = s.create_experiment("from-3.16")
run = s.create_run(e, "u", 0, [], "old-run")
s.log_metric(run.info.run_id, Metric("loss", 0.25, 0, 0))
a = Auth(); a.init_db("sqlite:///basic_auth.db"); a.create_user("admin", "old-password", is_admin=True)`)
	if out, err := r.runWith(oldPy, "backup"); err != nil || !strings.Contains(out, "backed up") {
		t.Fatalf("backup by the older MLflow: %v\n%s", err, out)
	}
	// The schemas differ: the restore's upgrade has work to do.
	schema := `import sqlite3; print(sqlite3.connect("mlflow.db").execute("select version_num from alembic_version").fetchone()[0])`
	oldRev := r.py(schema)
	head := r.py(`from mlflow.store.db.utils import _get_latest_schema_revision; print(_get_latest_schema_revision())`)
	if oldRev == head {
		t.Fatalf("3.16.1's schema %s is the locked MLflow's: the test proves nothing", oldRev)
	}
	r.clearData()
	out, err := r.run("restore")
	if err != nil || !strings.Contains(out, "upgrading the schema") || !strings.Contains(out, "(MLflow 3.16.1)") {
		t.Fatalf("restore of a 3.16.1 backup: %v\n%s", err, out)
	}
	if rev := r.py(schema); rev != head {
		t.Errorf("restored schema %s, want %s (the upgrade did not run before anything opened it)", rev, head)
	}
	got := r.py(`from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.entities import ViewType
s = SqlAlchemyStore("sqlite:///mlflow.db", "/tmp/artifacts")
e = s.get_experiment_by_name("from-3.16")
runs = s.search_runs([e.experiment_id], "", ViewType.ALL)
print(runs[0].info.run_name, s.get_metric_history(runs[0].info.run_id, "loss")[0].value)`)
	if got != "old-run 0.25" {
		t.Errorf("after the upgrade: %q, want the old run and its metric", got)
	}
}

// TestBackupPostgres: with MLSTACK_DATABASE=postgres (mlflow.env, which the
// unit and the timer's service read) backup says in one line that there is
// nothing to do, and does nothing: no object in the bucket. Restore, which
// then checks the database's schema (TestRestoreUpgradesPostgres), fails
// the start in one line when it has no PostgreSQL store URI (store.env not
// read), or cannot reach the database, without the password; neither
// brings back a backup of the sqlite days.
func TestBackupPostgres(t *testing.T) {
	t.Parallel()
	r := newBackupRig(t)
	r.putSecrets("an-admin-password-5", "a-flask-key")
	// A backup from before (sqlite), which a restore must not bring back.
	r.py(`import sqlite3; t = sqlite3.connect("mlflow.db"); t.execute("create table runs (name text)"); t.commit()`)
	if out, err := r.run("backup"); err != nil {
		t.Fatalf("sqlite backup: %v\n%s", err, out)
	}
	before := r.keys()
	out, err := r.run("backup", "MLSTACK_DATABASE=postgres")
	want := "mlstack-backup: backup: nothing to do: the tracking data is in PostgreSQL, which RDS's backups and snapshots keep\n"
	if err != nil || out != want {
		t.Errorf("backup: %v, want the one line %q:\n%s", err, want, out)
	}
	// Nothing listens on port 9 of 127.0.0.1 (discard, never served here).
	const pw = "the-db-password-0123"
	for _, c := range []struct{ store, want string }{
		{"sqlite:////var/lib/mlflow/mlflow.db", "mlstack-backup: restore: no PostgreSQL store in _MLFLOW_SERVER_FILE_STORE " +
			"(/run/mlflow/store.env, which mlstack_keys.py writes)\n"},
		{"postgresql+psycopg2://mlflow:" + pw + "@127.0.0.1:9/mlflow?sslmode=require",
			"mlstack-backup: restore: reading the schema's version from the database: connection to server at \"127.0.0.1\", port 9 failed"},
	} {
		r.clearData()
		out, err := r.run("restore", "MLSTACK_DATABASE=postgres", "_MLFLOW_SERVER_FILE_STORE="+c.store)
		if err == nil || !strings.HasPrefix(out, c.want) || strings.Count(out, "\n") != 1 || strings.Contains(out, pw) {
			t.Errorf("restore with store %.20s…: %v, want the one line %q…, no password:\n%s", c.store, err, c.want, out)
		}
		if entries, err := os.ReadDir(r.data); err != nil || len(entries) != 0 {
			t.Errorf("the data dir after a postgres restore: %v %v, want it empty", entries, err)
		}
	}
	if after := r.keys(); !slices.Equal(after, before) {
		t.Errorf("postgres backup and restore changed the bucket: %v, was %v", after, before)
	}
}
