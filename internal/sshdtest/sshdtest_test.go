package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// newKey is an ed25519 key as OpenSSH PEM, its signer and its public key.
func newKey(t *testing.T) ([]byte, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), signer
}

// TestStart: the server presents the host key it was given, lets in the
// authorized key as the test's user and no other key, runs commands, and
// is gone once its test has ended.
func TestStart(t *testing.T) {
	hostPEM, hostSigner := newKey(t)
	_, userSigner := newKey(t)
	_, otherSigner := newKey(t)
	var addr string
	t.Run("server", func(t *testing.T) {
		srv := Start(t, hostPEM, ssh.MarshalAuthorizedKey(userSigner.PublicKey()))
		addr = srv.Addr
		if !strings.HasPrefix(srv.Addr, "127.0.0.1:") || srv.User == "" {
			t.Fatalf("server %+v", srv)
		}
		if _, err := os.Stat(filepath.Join(srv.Dir, "sshd_config")); err != nil {
			t.Errorf("no config in %s: %v", srv.Dir, err)
		}
		dial := func(signer ssh.Signer) (*ssh.Client, error) {
			return ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
				User: srv.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
				HostKeyCallback: ssh.FixedHostKey(hostSigner.PublicKey()), Timeout: 10 * time.Second,
			})
		}
		c, err := dial(userSigner)
		if err != nil {
			t.Fatalf("login with the authorized key and the given host key: %v\nlog:\n%s", err, srv.Log)
		}
		defer c.Close()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sess.Stdout = &out
		if err := sess.Run("echo sshdtest-ok"); err != nil || strings.TrimSpace(out.String()) != "sshdtest-ok" {
			t.Errorf("command: %v %q", err, out.String())
		}
		if c, err := dial(otherSigner); err == nil {
			c.Close()
			t.Error("another key logged in")
		}
		if !strings.Contains(srv.Log.String(), "Accepted publickey") {
			t.Errorf("the log lacks the login:\n%s", srv.Log)
		}
	})
	if addr == "" {
		t.Fatal("the server did not start")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("sshd still listens on %s after its test ended", addr)
	}
}

func TestSyncBuffer(t *testing.T) {
	t.Parallel()
	var b SyncBuffer
	done := make(chan struct{})
	go func() {
		for range 100 {
			_, _ = b.Write([]byte("x"))
		}
		close(done)
	}()
	_ = b.String() // read while another goroutine writes: -race checks the lock
	<-done
	if got := b.String(); got != strings.Repeat("x", 100) {
		t.Errorf("String = %q", got)
	}
}

// TestStartFailures: an sshd that exits at start, or never listens, and a
// config dir that cannot be written end the test saying so, with the log.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := l.Addr().String()
	l.Close()

	log := &SyncBuffer{}
	_, _ = log.Write([]byte("Bad configuration option: Nonsense"))
	exited := make(chan struct{})
	close(exited)
	if got := testenv.StopsAt(func(tb testing.TB) { waitListening(tb, free, exited, log) }); !strings.Contains(got, "sshd exited at start") ||
		!strings.Contains(got, "Bad configuration option") {
		t.Errorf("an exited sshd failed with %q, want it said with the log", got)
	}

	missing := filepath.Join(t.TempDir(), "no", "such")
	if got := testenv.StopsAt(func(tb testing.TB) { writeConfig(tb, missing, []byte("k"), []byte("a")) }); !strings.Contains(got, "no such file or directory") {
		t.Errorf("writeConfig into a missing dir failed with %q", got)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, []byte("HOSTKEY"), []byte("AUTHKEYS"))
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HostKey " + filepath.Join(dir, "host_key"), "AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PasswordAuthentication no", "ListenAddress 127.0.0.1"} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("sshd_config lacks %q:\n%s", want, b)
		}
	}
	for name, want := range map[string]string{"host_key": "HOSTKEY", "authorized_keys": "AUTHKEYS"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
}
