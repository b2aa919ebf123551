package pgtest

// How the cluster's helpers fail: with a message that says what broke,
// through t.Fatal, and never by returning as if all went well.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
)

func TestVersionOrder(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{
		"/usr/lib/postgresql/16/bin": 16,
		"/usr/lib/postgresql/9/bin":  9,
		"/usr/lib/postgresql/x/bin":  0,
	} {
		if got := version(in); got != want {
			t.Errorf("version(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestQuoting(t *testing.T) {
	t.Parallel()
	if got := ident(`my"db`); got != `"my""db"` {
		t.Errorf("ident = %s", got)
	}
	if got := literal(`it's`); got != `'it''s'` {
		t.Errorf("literal = %s", got)
	}
}

// TestHelpersFail: psql against a cluster that is not there, a command
// that fails, a file that cannot be written, and a postmaster that exited
// all end the test with what went wrong.
func TestHelpersFail(t *testing.T) {
	t.Parallel()
	s := &Server{Host: "127.0.0.1", Port: 1, Log: &sshdtest.SyncBuffer{}, bin: binDir(t), dir: t.TempDir()}

	if out, err := s.query("postgres", "SELECT 1"); err == nil || out != "" || !strings.HasPrefix(err.Error(), "psql: ") {
		t.Errorf("query without a cluster = %q, %v; want psql's error", out, err)
	}
	if got := testenv.StopsAt(func(tb testing.TB) { s.Query(tb, "postgres", "SELECT 1") }); !strings.HasPrefix(got, "psql: ") {
		t.Errorf("Query without a cluster failed with %q, want psql's error", got)
	}
	if got := testenv.StopsAt(func(tb testing.TB) { s.run(tb, "false") }); !strings.HasPrefix(got, "false: exit status 1") {
		t.Errorf("run of a failing command failed with %q", got)
	}
	missing := filepath.Join(s.dir, "no", "such", "dir", "f")
	if got := testenv.StopsAt(func(tb testing.TB) { s.write(tb, missing, "x", 0o600) }); !strings.Contains(got, "no such file or directory") {
		t.Errorf("write into a missing dir failed with %q", got)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("write made the file anyway")
	}

	_, _ = s.Log.Write([]byte("FATAL:  could not bind IPv4 address"))
	exited := make(chan struct{})
	close(exited)
	if got := testenv.StopsAt(func(tb testing.TB) { s.waitReady(tb, exited) }); !strings.Contains(got, "exited before it took connections") ||
		!strings.Contains(got, "could not bind") {
		t.Errorf("waitReady on an exited postmaster failed with %q, want it to say so with the log", got)
	}
}
