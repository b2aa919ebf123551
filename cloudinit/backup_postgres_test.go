package cloudinit

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mlstack/mlstack/internal/pgtest"
	"github.com/mlstack/mlstack/internal/testenv"
)

// TestRestoreUpgradesPostgres: the tracking schema of a --db postgres
// stack, in a real PostgreSQL (pgtest, as RDS serves it), made by an older
// MLflow (3.16.1, its own venv) with a run in it, is upgraded to the
// locked MLflow's head by mlstack_backup.py restore, run as the unit runs
// it after mlstack_keys.py (the URI from the store.env that script wrote,
// through the environment), in one logged line naming both revisions; the
// run is there after it and the locked MLflow opens the store; the next
// start finds the schema at head and does nothing (its cost is logged);
// a backup of the sqlite days is not restored. A rollback, the older
// MLflow's Python running the step against the upgraded database, fails
// with one line saying a newer MLflow upgraded it, and so does a basic-auth
// schema this MLflow does not know. The database password is in no output
// and on no command line the step starts (a Python audit hook watches
// every process it would spawn).
func TestRestoreUpgradesPostgres(t *testing.T) {
	t.Parallel()
	oldVenv := os.Getenv("MLSTACK_TEST_MLFLOW_OLD_VENV")
	if oldVenv == "" {
		testenv.Missing(t, "no older MLflow venv (MLSTACK_TEST_MLFLOW_OLD_VENV is not set; scripts/test.sh makes one)")
	}
	oldPy := filepath.Join(oldVenv, "bin", "python")
	pg := pgtest.Start(t)
	const dbPassword = `up'gr"ade$x\y%(z)s%41@:/?#&=+ ;-0123`
	pg.CreateDatabase(t, "mlflow", dbPassword, "mlflow")
	r := newBackupRig(t)
	r.putSecrets("the-admin-password-3", "a-flask-key")
	uri := r.storeURI(pg.Port, dbPassword)
	secrets := []string{dbPassword, url.QueryEscape(dbPassword), url.PathEscape(dbPassword), strings.SplitN(strings.SplitN(uri, "@", 2)[0], ":", 3)[2]}
	noPassword := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s: the database password is in the output", what)
			}
		}
	}
	pgEnv := []string{"MLSTACK_DATABASE=postgres", "_MLFLOW_SERVER_FILE_STORE=" + uri, "MLFLOW_AUTH_CONFIG_PATH=" + filepath.Join(r.keysRig.run, "basic_auth.ini")}

	// A backup of the sqlite days in the bucket, which no postgres start restores.
	r.py(`import sqlite3; t = sqlite3.connect("mlflow.db"); t.execute("create table runs (name text)"); t.commit()`)
	if out, err := r.run("backup"); err != nil {
		t.Fatalf("sqlite backup: %v\n%s", err, out)
	}
	bucket := r.keys()
	r.clearData()

	// MLflow 3.16.1 makes its schema, a run with a metric, and the admin.
	if v := r.pyWith(oldPy, `import importlib.metadata as m; print(m.version("mlflow"))`); v != "3.16.1" {
		t.Fatalf("the older venv holds MLflow %s, want 3.16.1", v)
	}
	r.pyEnv(oldPy, `import os
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as Auth
from mlflow.entities import Metric
s = SqlAlchemyStore(os.environ["URI"], "/tmp/artifacts")
run = s.create_run(s.create_experiment("from-3.16"), "u", 0, [], "old-run")
s.log_metric(run.info.run_id, Metric("loss", 0.25, 0, 0))
a = Auth(); a.init_db(os.environ["URI"]); a.create_user("admin", "old-password-0123", is_admin=True)`, "URI="+uri)
	latest := `from mlflow.store.db.utils import _get_latest_schema_revision; print(_get_latest_schema_revision())`
	oldHead, head := r.pyWith(oldPy, latest), r.py(latest)
	revision := func() string {
		return pg.Query(t, "mlflow", "SELECT string_agg(version_num, ',') FROM alembic_version")
	}
	authRevision := func() string {
		return pg.Query(t, "mlflow", "SELECT string_agg(version_num, ',') FROM alembic_version_auth")
	}
	if rev := revision(); rev != oldHead || rev == head {
		t.Fatalf("3.16.1 left the schema at %s (its head %s, the locked one's %s): the test proves nothing", rev, oldHead, head)
	}
	authBefore := authRevision()

	// The first start of the locked MLflow: the schema upgraded, the run kept.
	start := time.Now()
	out, err := r.runAudited(r.python, "restore", secrets, pgEnv...)
	noPassword("the upgrade", out)
	want := fmt.Sprintf("mlstack-backup: restore: upgrading the tracking schema from %s to %s (MLflow %s)\n", oldHead, head, DefaultMLflowVersion)
	if rev := revision(); rev != head {
		t.Errorf("after the restore the schema is at %s, want %s", rev, head)
	}
	if err != nil || !strings.Contains(out, want) || !strings.Contains(out, "restore: the tracking schema is at "+head+" (") {
		t.Fatalf("restore of a 3.16.1 schema: %v, want %q in:\n%s", err, want, out)
	}
	t.Logf("the upgrade from %s to %s took %.1f s (the whole step)", oldHead, head, time.Since(start).Seconds())
	// The database's admin (3.16.1 made it with another password) has the
	// stack's, as a snapshot restored under new stack secrets needs.
	if !strings.Contains(out, "restore: the admin's password in the database set to the stack's") || !r.adminPassword(pg, "the-admin-password-3") {
		t.Errorf("the restore did not give the admin the stack's password:\n%s", out)
	}
	if rev := authRevision(); rev != authBefore {
		t.Errorf("the basic-auth schema went from %s to %s", authBefore, rev)
	}
	got := r.pyEnv(r.python, `import os
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.entities import ViewType
s = SqlAlchemyStore(os.environ["URI"], "/tmp/artifacts")
e = s.get_experiment_by_name("from-3.16")
runs = s.search_runs([e.experiment_id], "", ViewType.ALL)
print(runs[0].info.run_name, s.get_metric_history(runs[0].info.run_id, "loss")[0].value)`, "URI="+uri)
	if got != "old-run 0.25" {
		t.Errorf("the locked MLflow reads %q after the upgrade, want the old run and its metric", got)
	}

	// The next starts: at head, nothing done; what the check costs.
	var took []time.Duration
	for range 3 {
		start := time.Now()
		out, err := r.run("restore", pgEnv...)
		took = append(took, time.Since(start))
		noPassword("a start at head", out)
		want := "mlstack-backup: restore: nothing to do: the tracking data is in PostgreSQL, which RDS's backups and snapshots keep; its schema is at this MLflow's head (" + head + ")\n"
		if err != nil || out != want {
			t.Fatalf("a start at head: %v, want the one line %q:\n%s", err, want, out)
		}
	}
	start = time.Now()
	if out, err := r.run("backup", pgEnv...); err != nil || !strings.Contains(out, "backup: nothing to do") {
		t.Errorf("backup: %v\n%s", err, out)
	}
	slices.Sort(took)
	t.Logf("the check at head takes %v (min of 3, max %v); the step's former no-op (backup's today) %v", took[0].Round(time.Millisecond),
		took[2].Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if rev := revision(); rev != head {
		t.Errorf("a start at head changed the schema to %s", rev)
	}
	if entries, err := os.ReadDir(r.data); err != nil || len(entries) != 0 {
		t.Errorf("the data dir after postgres restores: %v %v, want it empty (no sqlite backup restored)", entries, err)
	}
	if after := r.keys(); !slices.Equal(after, bucket) {
		t.Errorf("postgres restores changed the bucket: %v, was %v", after, bucket)
	}

	// A rollback: MLflow 3.16.1's Python against the upgraded database.
	out, err = r.runAudited(oldPy, "restore", secrets, pgEnv...)
	noPassword("the rollback", out)
	want = fmt.Sprintf("mlstack-backup: restore: the database's tracking schema is at revision %s, which MLflow 3.16.1 does not know: "+
		"a newer MLflow upgraded the database, and this one cannot serve it", head)
	if err == nil || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("a rollback to 3.16.1: %v, want the one line %q…:\n%s", err, want, out)
	}
	if rev := revision(); rev != head {
		t.Errorf("the rollback changed the schema to %s", rev)
	}

	// A basic-auth schema this MLflow does not know, the tracking one at head.
	pg.Query(t, "mlflow", "UPDATE alembic_version_auth SET version_num = 'f0f0f0f0f0f0'")
	out, err = r.run("restore", pgEnv...)
	noPassword("an unknown basic-auth schema", out)
	want = fmt.Sprintf("the database's basic-auth schema is at revision f0f0f0f0f0f0, which MLflow %s does not know", DefaultMLflowVersion)
	if err == nil || !strings.Contains(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("an unknown basic-auth revision: %v, want the one line %q…:\n%s", err, want, out)
	}
}

// adminPassword says whether the admin's password hash in the database
// verifies password (werkzeug, as MLflow's basic auth checks it).
func (r *backupRig) adminPassword(pg *pgtest.Server, password string) bool {
	r.t.Helper()
	hash := pg.Query(r.t, "mlflow", "SELECT password_hash FROM users WHERE username = 'admin'")
	return r.pyEnv(r.python, `import os
from werkzeug.security import check_password_hash
print(check_password_hash(os.environ["HASH"], os.environ["PASSWORD"]))`, "HASH="+hash, "PASSWORD="+password) == "True"
}

// storeURI is the store URI mlstack_keys.py writes to store.env for a
// database on 127.0.0.1:port (user and database mlflow), read back as
// systemd reads the file.
func (r *backupRig) storeURI(port int, password string) string {
	r.t.Helper()
	r.keysRig.env = append(r.keysRig.env, "MLSTACK_DATABASE=postgres")
	r.put("db-password", password, ssmtypes.ParameterTypeSecureString)
	r.put("database", fmt.Sprintf(`{"host": "127.0.0.1", "port": %d, "name": "mlflow", "user": "mlflow"}`, port), ssmtypes.ParameterTypeString)
	if out, err := r.keysRig.exec(); err != nil {
		r.t.Fatalf("mlstack_keys.py: %v\n%s", err, out)
	}
	env, _ := r.readFile("store.env")
	uri := parseSystemdEnv(env)["_MLFLOW_SERVER_FILE_STORE"]
	if !strings.HasPrefix(uri, "postgresql+psycopg2://mlflow:") {
		r.t.Fatalf("store.env holds no PostgreSQL store (%.25s…)", uri)
	}
	return uri
}

// pyEnv runs Python code with python in the data dir, with env added to
// this process's environment (the URI goes there, never on a command line).
func (r *backupRig) pyEnv(python, code string, env ...string) string {
	r.t.Helper()
	cmd := exec.Command(python, "-c", code)
	cmd.Dir, cmd.Env = r.data, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("python: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// auditedRun runs the script as __main__ under a Python audit hook that
// fails it (exit 97, saying so) when a process it spawns has one of the
// secrets in its arguments, where any local user could read it.
const auditedRun = `import json, os, runpy, sys
secrets = json.loads(os.environ.pop("MLSTACK_TEST_SECRETS"))
def words(x):  # an environment is no command line: only its user reads it
    if hasattr(x, "keys"):
        return []
    if isinstance(x, (list, tuple)):
        return [w for y in x for w in words(y)]
    return [os.fsdecode(x) if isinstance(x, (bytes, os.PathLike)) else str(x)]
def hook(event, args):
    if event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork"):
        if any(s in w for w in words(args) for s in secrets):
            sys.stderr.write("AUDIT: %s with the password on its command line\n" % event)
            sys.stderr.flush()
            os._exit(97)
sys.addaudithook(hook)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
`

// runAudited runs `mlstack_backup.py verb` as run does, under auditedRun.
func (r *backupRig) runAudited(python, verb string, secrets []string, env ...string) (string, error) {
	b, err := json.Marshal(secrets)
	must(r.t, err)
	cmd := exec.Command(python, "-c", auditedRun, r.script, verb)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + r.t.TempDir(), "MLSTACK_DATA_DIR=" + r.data,
		"MLSTACK_BACKUPS=s3://" + r.bucket + "/backups/", "MLSTACK_PARAM_PATH=" + r.path, "MLSTACK_ADMIN_USERNAME=admin",
		"AWS_DEFAULT_REGION=us-east-1", "MLSTACK_TEST_SECRETS=" + string(b)}, env...)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 97 {
		r.t.Errorf("the step put the password on a command line:\n%s", out)
	}
	return string(out), err
}
