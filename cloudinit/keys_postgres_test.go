package cloudinit

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mlstack/mlstack/internal/sshdtest"
)

// pgAddress is the database parameter mlstack up writes once RDS is available.
const pgAddress = `{"host": "mlstack-demo.abcdefghijkl.us-east-1.rds.amazonaws.com", "port": 5432, "name": "mlflow", "user": "mlflow"}`

// put writes one of the stack's parameters, as mlstack up does.
func (r *keysRig) put(name, value string, typ ssmtypes.ParameterType) {
	r.t.Helper()
	_, err := r.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(r.path + name),
		Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)})
	must(r.t, err)
}

// postgresRig is a keys rig in postgres mode, the secrets and the database
// password in SSM, the database parameter not yet.
func postgresRig(t *testing.T, dbPassword string) *keysRig {
	r := newKeysRig(t)
	r.env = append(r.env, "MLSTACK_DATABASE=postgres")
	r.putSecrets("a-good-password-1", "a-good-flask-secret-key")
	r.put("db-password", dbPassword, ssmtypes.ParameterTypeSecureString)
	r.secretIDs = append(r.secretIDs, dbPassword)
	return r
}

func (r *keysRig) exists(name string) bool {
	_, err := os.Stat(filepath.Join(r.run, name))
	return err == nil
}

// storeAsRead is what the server makes of store.env and basic_auth.ini:
// the URI as SQLAlchemy parses it, and the basic-auth config as MLflow
// reads it.
type storeAsRead struct {
	Driver, User, Password, Host, Database string
	Port                                   int
	Query                                  map[string]string
	AuthURI                                string `json:"auth_uri"`
	AdminPassword                          string `json:"admin_password"`
}

func (r *keysRig) readStore(uri string) storeAsRead {
	r.t.Helper()
	cmd := exec.Command(r.python, "-c", `import json, os
from sqlalchemy.engine import make_url
from mlflow.server.auth.config import read_auth_config
u = make_url(os.environ["URI"])
c = read_auth_config()
print(json.dumps({"driver": u.drivername, "user": u.username, "password": u.password, "host": u.host,
    "port": u.port, "database": u.database, "query": dict(u.query), "auth_uri": c.database_uri,
    "admin_password": c.admin_password}))`)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.t.TempDir(), "URI=" + uri,
		"MLFLOW_AUTH_CONFIG_PATH=" + filepath.Join(r.run, "basic_auth.ini")}
	out, err := cmd.Output()
	var got storeAsRead
	if err != nil || json.Unmarshal(out, &got) != nil {
		r.t.Fatalf("reading the store back with SQLAlchemy and MLflow's auth config: %v", err)
	}
	return got
}

// TestKeysScriptPostgres: in postgres mode store.env gives the tracking and
// registry stores (and `mlflow server`'s MLFLOW_BACKEND_STORE_URI) one
// PostgreSQL URI over SSL, which SQLAlchemy reads back to the parameter's
// address and the password as stored in SSM, whatever its characters, and
// basic_auth.ini points MLflow's auth at the same database; both files
// 0600; no password in the output. Without MLSTACK_DATABASE nothing of it
// happens, even with the parameters there.
func TestKeysScriptPostgres(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{
		"plain-db-password-0123",
		`p@ss:w/o%rd?#&=+ ;x'y"z$HOME\%(x)s` + "`id`",
		"%41%%2F%(user)s-percent",
	} {
		r := postgresRig(t, pw)
		r.put("database", pgAddress, ssmtypes.ParameterTypeString)
		if out, err := r.exec(); err != nil {
			t.Fatalf("mlstack_keys.py: %v\n%s", err, out)
		}
		env, mode := r.readFile("store.env")
		vars := parseSystemdEnv(env)
		uri := vars["_MLFLOW_SERVER_FILE_STORE"]
		if mode != 0o600 || len(vars) != 3 || vars["_MLFLOW_SERVER_REGISTRY_STORE"] != uri || vars["MLFLOW_BACKEND_STORE_URI"] != uri {
			t.Errorf("store.env (mode %o) does not set the three stores to one URI: %v", mode, slicesOfKeys(vars))
		}
		if _, mode := r.readFile("basic_auth.ini"); mode != 0o600 {
			t.Errorf("basic_auth.ini mode %o", mode)
		}
		got := r.readStore(uri)
		if got.Password != pw || got.AuthURI != uri || got.AdminPassword != "a-good-password-1" {
			t.Error("the password or the auth database do not read back as stored in SSM")
		}
		got.Password, got.AuthURI, got.AdminPassword = "", "", ""
		want := storeAsRead{Driver: "postgresql+psycopg2", User: "mlflow", Host: "mlstack-demo.abcdefghijkl.us-east-1.rds.amazonaws.com",
			Port: 5432, Database: "mlflow", Query: map[string]string{"sslmode": "require"}}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Errorf("the store URI reads back as %s, want %s", g, w)
		}
	}

	r := postgresRig(t, "plain-db-password-0123")
	r.put("database", pgAddress, ssmtypes.ParameterTypeString)
	r.env = nil // sqlite
	if out, err := r.exec(); err != nil {
		t.Fatalf("mlstack_keys.py without MLSTACK_DATABASE: %v\n%s", err, out)
	}
	if ini, _ := r.readFile("basic_auth.ini"); r.exists("store.env") || !strings.Contains(ini, "database_uri = sqlite:////var/lib/mlflow/basic_auth.db\n") {
		t.Errorf("sqlite mode: store.env written %v, basic_auth.ini:\n%s", r.exists("store.env"), ini)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

func slicesOfKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestKeysScriptWaitsForDatabase: while the database parameter is missing
// (RDS is still being made) the script says so at each attempt and fails
// the start after the last, writing no config but publishing the
// certificate (mlstack can pin it meanwhile); a start that is waiting when
// mlstack up writes the parameter goes on with it and succeeds.
func TestKeysScriptWaitsForDatabase(t *testing.T) {
	t.Parallel()
	r := postgresRig(t, "a-db-password-0123456")
	r.env = append(r.env, "MLSTACK_DB_ATTEMPTS=3", "MLSTACK_DB_DELAY=0.1")
	out, err := r.exec()
	waiting := "waiting for the database: SSM parameter " + r.path + "database not written yet (mlstack up writes it once RDS is available; attempt "
	for _, want := range []string{waiting + "1/3)", waiting + "3/3)", "no SSM parameter " + r.path + "database after 3 attempts"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("without the database parameter: %v, want %q in:\n%s", err, want, out)
		}
	}
	for _, f := range []string{"store.env", "basic_auth.ini", "secrets.env"} {
		if r.exists(f) {
			t.Errorf("%s written before the database is known", f)
		}
	}
	if cert, _ := r.published("tls-cert"); !strings.Contains(cert, "BEGIN CERTIFICATE") {
		t.Error("the certificate was not published while the database was awaited")
	}

	// The parameter appears while a start waits for it.
	r.env = append(r.env, "MLSTACK_DB_ATTEMPTS=300", "MLSTACK_DB_DELAY=0.2")
	cmd := r.command()
	stderr := &sshdtest.SyncBuffer{}
	cmd.Stderr = stderr
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(stderr.String(), "attempt 2/300)"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the script does not wait for the database:\n%s", stderr.String())
		}
	}
	r.put("database", pgAddress, ssmtypes.ParameterTypeString)
	select {
	case err := <-done:
		r.noSecretIn(stderr.String())
		if err != nil || !r.exists("store.env") || !strings.Contains(stderr.String(), "database: PostgreSQL mlstack-demo.") {
			t.Errorf("once the parameter is written: %v, store.env %v\n%s", err, r.exists("store.env"), stderr.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the script did not go on once the parameter was written:\n%s", stderr.String())
	}
}

// TestKeysScriptDatabaseErrors: a missing password, a database parameter
// that is not the JSON mlstack writes, or an unknown MLSTACK_DATABASE fail
// the start, naming the parameter and the field, and write no config.
func TestKeysScriptDatabaseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, database, env, want string
		noPassword                bool
	}{
		{name: "no password", database: pgAddress, noPassword: true, want: "no SSM parameter PATHdb-password"},
		{name: "not JSON", database: "host=db port=5432", want: "SSM parameter PATHdatabase is not JSON with host, port, name and user (JSONDecodeError)"},
		{name: "no user", database: `{"host": "db", "port": 5432, "name": "mlflow"}`, want: "is not JSON with host, port, name and user (KeyError)"},
		{name: "port as text", database: `{"host": "db", "port": "5432", "name": "mlflow", "user": "u"}`, want: "SSM parameter PATHdatabase: bad port"},
		{name: "host with a path", database: `{"host": "evil/x?sslmode=disable", "port": 5432, "name": "mlflow", "user": "u"}`, want: "PATHdatabase: bad host"},
		{name: "host with a user", database: `{"host": "a@b", "port": 5432, "name": "mlflow", "user": "u"}`, want: "PATHdatabase: bad host"},
		{name: "empty name", database: `{"host": "db", "port": 5432, "name": "", "user": "u"}`, want: "PATHdatabase: bad name"},
		{name: "unknown database", database: pgAddress, env: "MLSTACK_DATABASE=mysql", want: "MLSTACK_DATABASE is 'mysql', want postgres or nothing (sqlite)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := postgresRig(t, "the-db-password-0123")
			if tt.noPassword {
				_, err := r.ssm.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(r.path + "db-password")})
				must(t, err)
			}
			r.put("database", tt.database, ssmtypes.ParameterTypeString)
			if tt.env != "" {
				r.env = []string{tt.env}
			}
			out, err := r.exec()
			if want := strings.ReplaceAll(tt.want, "PATH", r.path); err == nil || !strings.Contains(out, want) {
				t.Errorf("%v, want a failure saying %q:\n%s", err, want, out)
			}
			for _, f := range []string{"store.env", "basic_auth.ini"} {
				if r.exists(f) {
					t.Errorf("%s written", f)
				}
			}
		})
	}
}
