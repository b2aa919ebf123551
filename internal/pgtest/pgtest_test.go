package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// TestServer: a role made by CreateDatabase logs in over TCP with its
// password and SSL, and not without SSL or with another password (as with
// RDS); once the test that started the cluster has ended, no process of it
// is left and its dir is gone.
func TestServer(t *testing.T) {
	const password = `it's a "pass" word; \ % $x`
	var pid int
	var dir string
	t.Run("cluster", func(t *testing.T) {
		s := Start(t)
		pid, dir = s.Pid, s.dir
		s.CreateDatabase(t, "mlflow", password, "mlflow")
		login := func(sslmode, pw string) (string, error) {
			cmd := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-A", "-t", "-c", "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
				"host="+s.Host+" port="+strconv.Itoa(s.Port)+" user=mlflow dbname=mlflow sslmode="+sslmode)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "PGPASSWORD=" + pw, "PGCONNECT_TIMEOUT=5"}
			out, err := cmd.CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if out, err := login("require", password); err != nil || out != "mlflow true" {
			t.Errorf("login with SSL and the password: %v %q, want mlflow over SSL", err, out)
		}
		if out, err := login("disable", password); err == nil || !strings.Contains(out, "no encryption") {
			t.Errorf("login without SSL: %v %q, want it refused", err, out)
		}
		if out, err := login("require", "another-password"); err == nil || !strings.Contains(out, "password authentication failed") {
			t.Errorf("login with another password: %v %q, want it refused", err, out)
		}
		if got := s.Query(t, "mlflow", "SELECT datname || ' ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mlflow'"); got != "mlflow mlflow" {
			t.Errorf("database and owner: %q", got)
		}
	})
	if pid == 0 {
		t.Fatal("the cluster did not start")
	}
	if err := syscall.Kill(-pid, 0); err == nil || err == syscall.EPERM {
		t.Errorf("processes of the cluster's group %d still run after its test ended", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's dir %s is still there: %v", dir, err)
	}
}
