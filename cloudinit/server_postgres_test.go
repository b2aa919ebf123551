package cloudinit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mlstack/mlstack/internal/pgtest"
	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/templates"
)

// TestMLflowServerPostgres runs the server of a --db postgres stack for
// real against a real PostgreSQL, which plays RDS (a private cluster: SSL
// only, a login role "mlflow" with a password full of URL and configparser
// characters, owning database "mlflow"). The stack's parameters are in moto
// as mlstack up writes them. Started the locked way (the unit's uvicorn),
// the real MLflow client makes a user and, as that user, logs a run with a
// param and a metric; the data is then in PostgreSQL's tables (the auth
// ones beside the tracking ones) and no sqlite database exists. Restarted
// the way other MLflow versions start (the version-pins drop-in's `mlflow
// server`), the server has it all again and the user signs in. Backup and
// restore, run as the unit runs them, do nothing (restore finds a new
// database, then one at this MLflow's head). The database password is
// on no process's command line and in no output, and once the test ends no
// process it started is left.
func TestMLflowServerPostgres(t *testing.T) {
	t.Parallel()
	left := &leftovers{}
	t.Cleanup(func() { left.check(t) }) // first registered: runs after every other cleanup
	pg := pgtest.Start(t)
	left.add(pg.Pid, pg.Port)
	const dbPassword = `pg'pw"$x\y%(z)s%41@:/?#&=+ ;-0123`
	pg.CreateDatabase(t, "mlflow", dbPassword, "mlflow")

	p := validParams()
	p.Database = DatabasePostgres
	const dns = "ec2-54-1-2-3.compute-1.amazonaws.com"
	r := newServerRig(t, p, dns, "54.1.2.3")
	if out, err := exec.Command(filepath.Join(r.venv, "bin", "python"), "-c", "import psycopg2").CombinedOutput(); err != nil {
		t.Fatalf("%s has no psycopg2 (the lock's psycopg2-binary): make it again with scripts/mlflow-venv.sh: %v\n%s", r.venv, err, out)
	}
	adminPW := `adm'in"%(pw)s-0123456789`
	r.keys.putSecrets(adminPW, "a-flask-secret-key-0123456789")
	r.keys.put("db-password", dbPassword, ssmtypes.ParameterTypeSecureString)
	r.keys.secretIDs = append(r.keys.secretIDs, dbPassword)
	r.keys.put("database", fmt.Sprintf(`{"host": "127.0.0.1", "port": %d, "name": "mlflow", "user": "mlflow"}`, pg.Port), ssmtypes.ParameterTypeString)
	port, _ := strconv.Atoi(r.port)
	left.add(0, port)

	// First start: the unit's ExecStartPre lines, then its ExecStart.
	r.startPre()
	env := r.environment("")
	if out := r.backupNoop("restore", env); !strings.Contains(out, "a new database: MLflow makes its tables") {
		t.Errorf("restore before the first start: want it to find a new database:\n%s", out)
	}
	uri := env["_MLFLOW_SERVER_FILE_STORE"]
	if !strings.HasPrefix(uri, "postgresql+psycopg2://mlflow:") || env["_MLFLOW_SERVER_REGISTRY_STORE"] != uri {
		t.Fatalf("the unit's stores are not store.env's PostgreSQL URI (%.25s…)", uri)
	}
	server, exited := r.start("server", r.execArgs(unitValue(t, r.unit, "ExecStart"), env), env)
	left.add(server.Process.Pid, 0)
	noSecretOnCommandLines(t, server.Process.Pid, 1, dbPassword, uri)
	const alicePW = "alice-password-0123456789"
	runID := r.mlflowClient(mlflowWrites, "MLFLOW_TRACKING_USERNAME=admin", "MLFLOW_TRACKING_PASSWORD="+adminPW, "ALICE_PASSWORD="+alicePW)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(runID) {
		t.Fatalf("the client logged no run: %q", runID)
	}
	proctest.Stop(t, server, exited, 20*time.Second)
	r.backupNoop("backup", env) // ExecStopPost

	// The data is in PostgreSQL, the auth tables beside the tracking ones.
	for sql, want := range map[string]string{
		"SELECT key || '=' || value FROM metrics WHERE run_uuid = '" + runID + "'":                   "loss=0.25",
		"SELECT key || '=' || value FROM params WHERE run_uuid = '" + runID + "'":                    "lr=0.01",
		"SELECT string_agg(username, ',' ORDER BY username) FROM users":                              "admin,alice",
		"SELECT (SELECT count(*) FROM alembic_version) || ' ' || count(*) FROM alembic_version_auth": "1 1",
	} {
		if got := pg.Query(t, "mlflow", sql); got != want {
			t.Errorf("%s: %q, want %q", sql, got, want)
		}
	}
	for _, db := range []string{"mlflow.db", "basic_auth.db"} {
		if _, err := os.Stat(filepath.Join(r.dir, db)); err == nil {
			t.Errorf("the server made sqlite's %s", db)
		}
	}

	// Restarted as other MLflow versions run: the drop-in's `mlflow server`,
	// its store from MLFLOW_BACKEND_STORE_URI (store.env over the drop-in's).
	dropIn := versionPinsDropIn(t)
	r.startPre()
	env = r.environment(dropIn)
	if env["MLFLOW_BACKEND_STORE_URI"] != uri {
		t.Fatal("store.env does not override the drop-in's MLFLOW_BACKEND_STORE_URI")
	}
	if out := r.backupNoop("restore", env); !strings.Contains(out, "its schema is at this MLflow's head (") {
		t.Errorf("restore before the restart: want the schema MLflow made found at its head:\n%s", out)
	}
	server, _ = r.start("mlflow-server", r.execArgs(lastExecStart(t, dropIn), env), env)
	left.add(server.Process.Pid, 0)
	noSecretOnCommandLines(t, server.Process.Pid, 2, dbPassword, uri) // mlflow server and its uvicorn
	got := r.mlflowClient(mlflowReads, "MLFLOW_TRACKING_USERNAME=admin", "MLFLOW_TRACKING_PASSWORD="+adminPW,
		"ALICE_PASSWORD="+alicePW, "RUN_ID="+runID)
	if want := `{"alice": "alice", "experiment": true, "run": "pg-run", "params": {"lr": "0.01"}, "metrics": {"loss": 0.25}}`; got != want {
		t.Errorf("after the restart the client reads %s, want %s", got, want)
	}
}

// mlflowWrites: the admin makes user alice, who logs a run into a new
// experiment; it prints the run's id.
const mlflowWrites = `
auth = get_app_client("basic-auth", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
auth.create_user(username="alice", password=os.environ["ALICE_PASSWORD"])
os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "alice", os.environ["ALICE_PASSWORD"]
mlflow.set_experiment("pg-experiment")
with mlflow.start_run(run_name="pg-run") as run:
    mlflow.log_param("lr", "0.01")
    mlflow.log_metric("loss", 0.25)
print(run.info.run_id)
`

// mlflowReads: the admin finds alice, alice signs in and reads her run.
const mlflowReads = `
auth = get_app_client("basic-auth", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
alice = auth.get_user("alice").username
os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "alice", os.environ["ALICE_PASSWORD"]
c = mlflow.MlflowClient()
run = c.get_run(os.environ["RUN_ID"])
exp = c.get_experiment_by_name("pg-experiment")
print(json.dumps({"alice": alice, "experiment": exp.experiment_id == run.info.experiment_id, "run": run.info.run_name,
                  "params": run.data.params, "metrics": run.data.metrics}))
`

// mlflowClient runs a script with the real MLflow client of the venv at
// https://DNS:5000, the tracking URI a user has, pinned to the published
// certificate; only the connection goes to the rig's loopback port (Host
// header and TLS name stay the public ones). It returns the last line the
// script prints (MLflow prints "View run" lines before it).
func (r *serverRig) mlflowClient(script string, env ...string) string {
	r.t.Helper()
	certPEM, _ := r.keys.published("tls-cert")
	certFile := filepath.Join(r.t.TempDir(), "server.crt")
	must(r.t, os.WriteFile(certFile, []byte(certPEM), 0o644))
	const prelude = `import json, os, socket
gai = socket.getaddrinfo
def to_rig(host, port, *args, **kwargs):
    if host == os.environ["RIG_DNS"] and str(port) == "5000":
        host, port = "127.0.0.1", int(os.environ["RIG_PORT"])
    return gai(host, port, *args, **kwargs)
socket.getaddrinfo = to_rig
import mlflow
from mlflow.server import get_app_client
`
	cmd := exec.Command(filepath.Join(r.venv, "bin", "python"), "-c", prelude+script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + r.t.TempDir(), "RIG_DNS=" + r.keys.dns, "RIG_PORT=" + r.port,
		"MLFLOW_TRACKING_URI=https://" + r.keys.dns + ":5000", "MLFLOW_TRACKING_SERVER_CERT_PATH=" + certFile}, env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		r.t.Fatalf("the MLflow client: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// backupNoop runs `mlstack_backup.py verb` with the unit's environment, as
// its ExecStartPre (restore) and ExecStopPost (backup) do: with postgres it
// says so and does nothing (restore, with a schema at head or none yet:
// TestRestoreUpgradesPostgres has the upgrade). It returns the output.
func (r *serverRig) backupNoop(verb string, env map[string]string) string {
	r.t.Helper()
	src, err := templates.FS.ReadFile("mlstack_backup.py")
	must(r.t, err)
	script := filepath.Join(r.t.TempDir(), "mlstack_backup.py")
	must(r.t, os.WriteFile(script, src, 0o644))
	cmd := exec.Command(filepath.Join(r.venv, "bin", "python"), script, verb)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir, "MLSTACK_DATA_DIR=" + r.dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), verb+": nothing to do: the tracking data is in PostgreSQL") {
		r.t.Errorf("mlstack_backup.py %s in the unit's environment: %v\n%s", verb, err, out)
	}
	return string(out)
}

// versionPinsDropIn is the unit drop-in mlstack-setup writes for an MLflow
// version the lock does not pin.
func versionPinsDropIn(t *testing.T) string {
	t.Helper()
	src, err := templates.FS.ReadFile("mlstack-setup.sh")
	must(t, err)
	m := regexp.MustCompile(`(?s)mlflow-server-cli\.conf" <<'EOF'\n(.*?\n)EOF\n`).FindSubmatch(src)
	if m == nil {
		t.Fatal("mlstack-setup.sh writes no mlflow-server-cli.conf drop-in")
	}
	return string(m[1])
}

// lastExecStart is the ExecStart= a drop-in leaves (it clears the unit's first).
func lastExecStart(t *testing.T, unit string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^ExecStart=(.+)$`).FindAllStringSubmatch(unit, -1)
	if len(m) == 0 {
		t.Fatal("no ExecStart= with a command")
	}
	return m[len(m)-1][1]
}

// noSecretOnCommandLines: no process of the group pgid (at least min of
// them) has a secret on its command line, which any local user can read.
func noSecretOnCommandLines(t *testing.T, pgid, min int, secrets ...string) {
	t.Helper()
	seen := 0
	for _, pid := range groupMembers(t, pgid) {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue // gone meanwhile
		}
		seen++
		for _, s := range secrets {
			if strings.Contains(string(cmdline), s) {
				t.Errorf("process %d of the server has a secret on its command line", pid)
			}
		}
	}
	if seen < min {
		t.Errorf("the server's group %d has %d processes, want at least %d", pgid, seen, min)
	}
}

// groupMembers lists the pids of the process group pgid, from /proc/*/stat.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Fatalf("cannot list /proc: %v", err)
	}
	var pids []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) {
			pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

// leftovers are the process groups and ports a test started; check, its
// first cleanup (so the last to run), proves none is left.
type leftovers struct {
	groups, ports []int
}

func (l *leftovers) add(pgid, port int) {
	if pgid != 0 {
		l.groups = append(l.groups, pgid)
	}
	if port != 0 {
		l.ports = append(l.ports, port)
	}
}

func (l *leftovers) check(t *testing.T) {
	for _, g := range l.groups {
		if pids := groupMembers(t, g); len(pids) > 0 {
			t.Errorf("processes %v of group %d are left after the test", pids, g)
		}
		if err := syscall.Kill(-g, 0); err == nil || err == syscall.EPERM {
			t.Errorf("group %d is left after the test", g)
		}
	}
	for _, p := range l.ports {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
			c.Close()
			t.Errorf("something still listens on port %d after the test", p)
		}
	}
	if !t.Failed() {
		t.Logf("left after the test: nothing of process groups %v, nothing on ports %v", l.groups, l.ports)
	}
}
