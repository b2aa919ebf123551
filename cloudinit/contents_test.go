package cloudinit

import (
	"bytes"
	"strings"
	"testing"
)

func TestUserDataContents(t *testing.T) {
	t.Parallel()
	p := validParams()
	p.S3EndpointURL = "http://127.0.0.1:9000"
	p.SSMEndpointURL = "http://127.0.0.1:9001"
	raw := render(t, p)
	// The server reaches S3 through the instance role; keys must never be here.
	for _, bad := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "aws_access_key", "AKIA"} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("user-data contains %q", bad)
		}
	}
	c := parse(t, raw)

	if c.Swap["filename"] == nil || c.Swap["size"] == nil {
		t.Errorf("no swap file configured: %v", c.Swap)
	}
	// No apt at first boot: Ubuntu's python3 makes the venv without ensurepip,
	// and uv comes from PyPI.
	if c.PackageUpdate || len(c.Packages) > 0 {
		t.Errorf("package_update %v, packages %v: the bootstrap must not need apt", c.PackageUpdate, c.Packages)
	}

	files := map[string]struct{ owner, perm string }{
		"/etc/mlflow/mlflow.env":                      {"root:root", "0600"},
		"/etc/systemd/system/mlflow.service":          {"root:root", "0644"},
		"/usr/local/libexec/mlstack/allowed-hosts.sh": {"root:root", "0755"},
		"/usr/local/sbin/mlstack-setup":               {"root:root", "0755"},
		"/usr/local/libexec/mlstack/mlstack_s3get.py": {"root:root", "0644"},
		"/usr/local/lib/mlstack/mlstack_mlflow.py":    {"root:root", "0644"},
		"/usr/local/lib/mlstack/mlstack_keys.py":      {"root:root", "0644"},
	}
	for path, want := range files {
		f := c.file(t, path)
		if f.Owner != want.owner || f.Permissions != want.perm {
			t.Errorf("%s: owner %s mode %s, want %s %s", path, f.Owner, f.Permissions, want.owner, want.perm)
		}
	}
	// The secrets come from SSM at each start (mlstack_keys.py), never from
	// the user-data: no basic-auth config, no secret key in mlflow.env.
	for _, f := range c.WriteFiles {
		if strings.Contains(f.Path, "basic_auth") {
			t.Errorf("the user-data writes %s", f.Path)
		}
	}
	if strings.Contains(c.file(t, "/etc/mlflow/mlflow.env").Content, "SECRET_KEY") {
		t.Error("mlflow.env holds a secret key")
	}

	env := parseSystemdEnv(c.file(t, "/etc/mlflow/mlflow.env").Content)
	wantEnv := map[string]string{
		"MLFLOW_AUTH_CONFIG_PATH": "/run/mlflow/basic_auth.ini",
		"MLSTACK_PARAM_PATH":      "/mlstack/demo/",
		"MLSTACK_ADMIN_USERNAME":  "admin",
		"AWS_DEFAULT_REGION":      "us-east-1",
		"MLFLOW_S3_ENDPOINT_URL":  "http://127.0.0.1:9000",
		"AWS_ENDPOINT_URL_S3":     "http://127.0.0.1:9000",
		"AWS_ENDPOINT_URL_SSM":    "http://127.0.0.1:9001",
	}
	for k, w := range wantEnv {
		if env[k] != w {
			t.Errorf("mlflow.env %s = %q, want %q", k, env[k], w)
		}
	}

	unit := c.file(t, "/etc/systemd/system/mlflow.service").Content
	for _, line := range []string{
		"After=network-online.target",
		"User=mlflow",
		"Restart=always",
		"RestartSec=5",
		"EnvironmentFile=/etc/mlflow/mlflow.env",
		"EnvironmentFile=-/run/mlflow/allowed-hosts.env",
		"EnvironmentFile=-/run/mlflow/secrets.env",
		"EnvironmentFile=-/run/mlflow/artifacts.env",
		"RuntimeDirectory=mlflow",
		"RuntimeDirectoryMode=0700",
		"ExecStartPre=/usr/local/libexec/mlstack/allowed-hosts.sh /run/mlflow/allowed-hosts.env",
		"ExecStartPre=/opt/mlflow/bin/python /usr/local/lib/mlstack/mlstack_keys.py",
		"WantedBy=multi-user.target",
	} {
		if !hasLine(unit, line) {
			t.Errorf("mlflow.service lacks line %q", line)
		}
	}
	// One process: uvicorn serves MLflow's basic-auth app (mlstack_mlflow.py)
	// with what `mlflow server` would give it, without that waiting parent.
	execStart := strings.Join(strings.Fields(strings.ReplaceAll(unitValue(t, unit, "ExecStart"), "\\\n", " ")), " ")
	want := "/opt/mlflow/bin/python -m uvicorn --host 0.0.0.0 --port 5000 --workers 1" +
		" --ssl-keyfile /var/lib/mlflow/tls/server.key --ssl-certfile /var/lib/mlflow/tls/server.crt" +
		" --app-dir /usr/local/lib/mlstack --factory mlstack_mlflow:create_app"
	if execStart != want {
		t.Errorf("ExecStart =\n  %s\nwant\n  %s", execStart, want)
	}
	for k, w := range map[string]string{
		"_MLFLOW_SERVER_FILE_STORE":      "sqlite:////var/lib/mlflow/mlflow.db",
		"_MLFLOW_SERVER_REGISTRY_STORE":  "sqlite:////var/lib/mlflow/mlflow.db",
		"_MLFLOW_SERVER_ARTIFACT_ROOT":   "s3://" + p.Bucket + "/artifacts",
		"_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
		// Proxied artifacts land where direct ones do: one layout, either mode.
		"_MLFLOW_SERVER_ARTIFACT_DESTINATION": "s3://" + p.Bucket + "/artifacts",
		"_MLFLOW_SGI_NAME":                    "uvicorn",
	} {
		if got := unitEnv(unit)[k]; got != w {
			t.Errorf("mlflow.service Environment %s = %q, want %q", k, got, w)
		}
	}
	if app := c.file(t, "/usr/local/lib/mlstack/mlstack_mlflow.py").Content; !strings.Contains(app, "def create_app():") {
		t.Errorf("mlstack_mlflow.py has no create_app factory:\n%s", app)
	}

	// The files that the unit and runcmd execute are the ones written.
	if len(c.Runcmd) != 1 || !sameList(c.Runcmd[0], setupCmd(t, p)) {
		t.Errorf("runcmd = %v", c.Runcmd)
	}
	setup := c.file(t, "/usr/local/sbin/mlstack-setup").Content
	for _, w := range []string{
		`lock=${MLSTACK_SETUP_LOCK:-/usr/local/share/mlstack/mlflow-lock.txt}`,
		`set -- --require-hashes --no-deps -r "$lock"`,
		`"mlflow[auth]==$version" boto3 cryptography psycopg2-binary`,
		"systemctl enable --now mlflow.service mlstack-backup.timer",
	} {
		if !strings.Contains(setup, w) {
			t.Errorf("setup script lacks %q:\n%s", w, setup)
		}
	}
}

func hasLine(text, line string) bool {
	for l := range strings.Lines(text) {
		if strings.TrimRight(l, "\n") == line {
			return true
		}
	}
	return false
}

// TestUserDataPostgres: with Database "postgres" mlflow.env says so (to
// mlstack_keys.py and mlstack_backup.py, in the unit and the backup
// timer's service) and the unit reads the stores mlstack_keys.py writes to
// /run/mlflow/store.env (an EnvironmentFile, which overrides the sqlite
// Environment= lines); nothing else of the user-data changes. Without it
// neither line is there.
func TestUserDataPostgres(t *testing.T) {
	t.Parallel()
	sqlite := validParams()
	pg := validParams()
	pg.Database = DatabasePostgres
	const envLine, unitLine = `MLSTACK_DATABASE="postgres"`, "EnvironmentFile=-/run/mlflow/store.env"
	for _, tt := range []struct {
		p    Params
		want bool
	}{{sqlite, false}, {pg, true}} {
		c := parse(t, render(t, tt.p))
		env := c.file(t, "/etc/mlflow/mlflow.env").Content
		unit := c.file(t, "/etc/systemd/system/mlflow.service").Content
		if hasLine(env, envLine) != tt.want || hasLine(unit, unitLine) != tt.want {
			t.Errorf("Database %q: mlflow.env has %s: %v, the unit has %s: %v; want %v",
				tt.p.Database, envLine, hasLine(env, envLine), unitLine, hasLine(unit, unitLine), tt.want)
		}
		if tt.want && parseSystemdEnv(env)["MLSTACK_DATABASE"] != DatabasePostgres {
			t.Errorf("mlflow.env MLSTACK_DATABASE = %q", parseSystemdEnv(env)["MLSTACK_DATABASE"])
		}
		// The timer's backups learn the mode from mlflow.env too (the
		// unit's ExecStartPre and ExecStopPost have its environment).
		if backup := c.file(t, "/etc/systemd/system/mlstack-backup.service").Content; !hasLine(backup, "EnvironmentFile=/etc/mlflow/mlflow.env") {
			t.Error("mlstack-backup.service does not read mlflow.env")
		}
	}
	// The postgres user-data is the sqlite one plus those two lines.
	var kept []string
	for line := range strings.Lines(string(render(t, pg))) {
		if l := strings.TrimSpace(line); l != envLine && l != unitLine {
			kept = append(kept, line)
		}
	}
	if strings.Join(kept, "") != string(render(t, sqlite)) {
		t.Error("the postgres user-data differs from the sqlite one by more than MLSTACK_DATABASE and store.env")
	}
}
