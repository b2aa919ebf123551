package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/provision/local"
	"golang.org/x/crypto/ssh"
)

const (
	testDNS = "ec2-203-0-113-9.eu-west-3.compute.amazonaws.com"
	testIP  = "203.0.113.9"
)

// sshFixture is a stack's local SSH files as up leaves them, for an
// instance at testDNS / testIP.
type sshFixture struct {
	dir        local.Dir
	hk         *testHostKey
	authorized []byte // the stack's login public key
	host       Host
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	d := local.StackDir(t.TempDir(), "demo")
	hk, err := newTestHostKey("demo")
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := local.NewSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveSSHKey(priv); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteKnownHosts([]string{testDNS, testIP}, hk.Public); err != nil {
		t.Fatal(err)
	}
	return &sshFixture{dir: d, hk: hk, authorized: pub,
		host: Host{Name: testDNS, KeyFile: d.SSHKeyFile(), KnownHostsFile: d.KnownHostsFile()}}
}

// testHostKey is a server's host key pair, as the instance makes it.
type testHostKey struct {
	Private []byte // OpenSSH PEM
	Public  ssh.PublicKey
}

func newTestHostKey(comment string) (*testHostKey, error) {
	priv, line, err := local.NewSSHKey(comment)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, err
	}
	return &testHostKey{Private: priv, Public: pub}, nil
}

// Fingerprint is the SHA256 form ssh-keygen -l prints.
func (k *testHostKey) Fingerprint() string { return ssh.FingerprintSHA256(k.Public) }

// server starts OpenSSH with the stack's host key and login key.
func (f *sshFixture) server(t *testing.T) *sshdtest.Server {
	return sshdtest.Start(t, f.hk.Private, f.authorized)
}

func (f *sshFixture) remote(srv *sshdtest.Server) Remote {
	return Remote{Addr: srv.Addr, User: srv.User}
}

// run runs cmd (none: a shell reading stdin) over a pinned connection.
func (f *sshFixture) run(t *testing.T, srv *sshdtest.Server, cmd, stdin string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := Dial(ctx, f.host, f.remote(srv))
	if err != nil {
		return "", err
	}
	defer client.Close()
	var words []string
	if cmd != "" {
		words = []string{cmd}
	}
	var out, errb bytes.Buffer
	err = Exec(ctx, client, words, strings.NewReader(stdin), &out, &errb)
	if errb.Len() > 0 {
		t.Logf("remote stderr: %s", errb.String())
	}
	return out.String(), err
}

// TestSSHAgainstOpenSSH: with the host key and login key mlstack generated,
// a real sshd runs commands; exit status and stdin go through.
func TestSSHAgainstOpenSSH(t *testing.T) {
	f := newSSHFixture(t)
	srv := f.server(t)

	out, err := f.run(t, srv, "echo ok", "")
	if err != nil || out != "ok\n" {
		t.Fatalf("echo ok: %q, %v", out, err)
	}
	_, err = f.run(t, srv, "exit 3", "")
	var exit *RemoteExitError
	if !errors.As(err, &exit) || exit.Status != 3 {
		t.Fatalf("exit 3: err %v, want RemoteExitError{3}", err)
	}
	out, err = f.run(t, srv, "tr a-z A-Z", "hello\n")
	if err != nil || out != "HELLO\n" {
		t.Fatalf("stdin: %q, %v", out, err)
	}
	// No command: the remote shell reads its commands from stdin.
	out, err = f.run(t, srv, "", "echo from-stdin-shell\n")
	if err != nil || !strings.Contains(out, "from-stdin-shell") {
		t.Fatalf("shell from stdin: %q, %v", out, err)
	}
}

// TestSSHRefusesOtherHostKey: a server with any other host key is refused
// before authentication, with both fingerprints in the message.
func TestSSHRefusesOtherHostKey(t *testing.T) {
	f := newSSHFixture(t)
	other, err := newTestHostKey("impostor")
	if err != nil {
		t.Fatal(err)
	}
	srv := sshdtest.Start(t, other.Private, f.authorized)
	marker := filepath.Join(t.TempDir(), "ran")
	_, err = f.run(t, srv, "touch "+marker, "")
	var mismatch *HostKeyMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("connected to a server with another host key: err %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"refusing to connect", testDNS, other.Fingerprint(), f.hk.Fingerprint(), f.host.KnownHostsFile} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran on the impostor")
	}
}

// TestSSHUnknownHost: a host missing from known_hosts is refused too.
func TestSSHUnknownHost(t *testing.T) {
	f := newSSHFixture(t)
	srv := f.server(t)
	f.host.Name = "ec2-198-51-100-1.eu-west-3.compute.amazonaws.com"
	_, err := f.run(t, srv, "echo ok", "")
	if err == nil || !strings.Contains(err.Error(), "is not in "+f.host.KnownHostsFile) {
		t.Fatalf("err %v, want a refusal naming known_hosts", err)
	}
}

func TestSSHMissingFiles(t *testing.T) {
	f := newSSHFixture(t)
	for name, h := range map[string]Host{
		"no login key":   {Name: testDNS, KeyFile: filepath.Join(t.TempDir(), "none"), KnownHostsFile: f.host.KnownHostsFile},
		"no known_hosts": {Name: testDNS, KeyFile: f.host.KeyFile, KnownHostsFile: filepath.Join(t.TempDir(), "none")},
		"key not a key":  {Name: testDNS, KeyFile: f.host.KnownHostsFile, KnownHostsFile: f.host.KnownHostsFile},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Dial(context.Background(), h, Remote{Addr: "127.0.0.1:1"}); err == nil {
				t.Fatal("Dial succeeded")
			}
		})
	}
}

func TestHint(t *testing.T) {
	h := Host{Name: testDNS, KeyFile: "/state/it's/id_ed25519", KnownHostsFile: "/state/demo/known_hosts"}
	want := `ssh -i '/state/it'\''s/id_ed25519' -o IdentitiesOnly=yes -o UserKnownHostsFile=/state/demo/known_hosts -o StrictHostKeyChecking=yes ubuntu@` + testDNS
	if got := Hint(h); got != want {
		t.Errorf("Hint = %s\nwant   %s", got, want)
	}
}
