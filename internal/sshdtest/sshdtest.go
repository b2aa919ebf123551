// Package sshdtest runs a real OpenSSH server (Debian's openssh-server) on a
// loopback port, so that mlstack's SSH client is tested against the server
// the instances run, not against a Go imitation.
package sshdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/testenv"
)

// SSHD is where Debian's openssh-server installs the server.
const SSHD = "/usr/sbin/sshd"

// Server is one running sshd.
type Server struct {
	Addr string // 127.0.0.1:PORT
	User string // the user it lets in: the one running the tests
	Dir  string // its config, keys and pid file
	Log  *SyncBuffer
}

// SyncBuffer is a buffer one goroutine writes (sshd's log, a process's
// output) while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs sshd with hostKeyPEM as its only host key and authorizedKeys as
// the keys that may log in as the current user (root: key only). Without
// sshd the test fails in CI, and elsewhere is skipped and fails the run
// (testenv): the package's TestMain must call testenv.Run.
func Start(t testing.TB, hostKeyPEM, authorizedKeys []byte) *Server {
	t.Helper()
	u := requireSSHD(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, hostKeyPEM, authorizedKeys)

	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	log := &SyncBuffer{}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfg, "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = log, log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	// sshd forks a process per connection: stop the whole group.
	exited, err := proctest.Start(t, cmd, 2*time.Second)
	if err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	waitListening(t, addr, exited, log)
	return &Server{Addr: addr, User: u.Username, Dir: dir, Log: log}
}

// requireSSHD ends the test without sshd (testenv.Missing: a failure in CI,
// elsewhere a skip that fails the run), and returns the user the server
// will let in.
func requireSSHD(t testing.TB) *user.User {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		testenv.Missing(t, "OpenSSH server not installed at "+SSHD+" (Debian: openssh-server)")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if u.Uid == "0" {
		// sshd run as root insists on its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// writeConfig writes the host key, the authorized keys and an sshd_config
// using them into dir, and returns the config's path.
func writeConfig(t testing.TB, dir string, hostKeyPEM, authorizedKeys []byte) string {
	t.Helper()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostKey := write("host_key", hostKeyPEM)
	authorized := write("authorized_keys", authorizedKeys)
	return write("sshd_config", []byte(strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + authorized,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"LogLevel VERBOSE",
		"",
	}, "\n")))
}

// waitListening waits up to 10 s for sshd to accept connections on addr;
// it fails the test when sshd exits first.
func waitListening(t testing.TB, addr string, exited <-chan struct{}, log *SyncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
