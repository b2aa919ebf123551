package provision

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mlstack/mlstack/internal/sshdtest"
)

const (
	testDNS = "ec2-203-0-113-9.eu-west-3.compute.amazonaws.com"
	testIP  = "203.0.113.9"
)

// sshFixture is a stack's local SSH state as up leaves it, for an instance
// at testDNS / testIP.
type sshFixture struct {
	sd         stateDir
	hk         *hostKey
	authorized []byte // the stack's login public key
	t          *target
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	sd := newStateDir(t.TempDir(), "demo")
	hk, err := prepareHostKey(sd, "demo", false, newProgress(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := newSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.writeFile("id_ed25519", priv); err != nil {
		t.Fatal(err)
	}
	inst := &ec2types.Instance{
		InstanceId: aws.String("i-0123456789abcdef0"), PublicDnsName: aws.String(testDNS), PublicIpAddress: aws.String(testIP),
		State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
	}
	if err := recordHostKey(sd, inst, hk, true, "demo", newProgress(io.Discard)); err != nil {
		t.Fatal(err)
	}
	return &sshFixture{sd: sd, hk: hk, authorized: pub, t: &target{
		stack: "demo", sd: sd, id: aws.ToString(inst.InstanceId), inst: inst, host: testDNS,
		sshOpen: true, haveKeys: true, hostKey: hk,
	}}
}

// server starts OpenSSH with the stack's host key and login key.
func (f *sshFixture) server(t *testing.T) *sshdtest.Server {
	return sshdtest.Start(t, f.hk.private, f.authorized)
}

func (f *sshFixture) run(t *testing.T, srv *sshdtest.Server, cmd, stdin string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := f.t.dial(ctx, Remote{Addr: srv.Addr, User: srv.User})
	if err != nil {
		return "", err
	}
	defer client.Close()
	var out, errb bytes.Buffer
	err = runSession(ctx, client, cmd, strings.NewReader(stdin), &out, &errb)
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
	other, _, err := newSSHKey("impostor")
	if err != nil {
		t.Fatal(err)
	}
	srv := sshdtest.Start(t, other, f.authorized)
	marker := filepath.Join(t.TempDir(), "ran")
	_, err = f.run(t, srv, "touch "+marker, "")
	var mismatch *HostKeyMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("connected to a server with another host key: err %v", err)
	}
	otherSigner, _ := ssh.ParsePrivateKey(other)
	msg := err.Error()
	for _, want := range []string{"refusing to connect", testDNS, fingerprint(otherSigner.PublicKey()), fingerprint(f.hk.public), f.sd.KnownHostsFile()} {
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
	f.t.host = "ec2-198-51-100-1.eu-west-3.compute.amazonaws.com"
	_, err := f.run(t, srv, "echo ok", "")
	if err == nil || !strings.Contains(err.Error(), "is not in "+f.sd.KnownHostsFile()) {
		t.Fatalf("err %v, want a refusal naming known_hosts", err)
	}
}

func TestKnownHostsFile(t *testing.T) {
	f := newSSHFixture(t)
	fi, err := os.Stat(f.sd.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %o, want 600", fi.Mode().Perm())
	}
	cb, err := knownhosts.New(f.sd.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.ParseIP(testIP), Port: 22}
	for _, h := range []string{testDNS, testIP} {
		if err := cb(h+":22", remote, f.hk.public); err != nil {
			t.Errorf("known_hosts does not pin the key for %s: %v", h, err)
		}
	}
	_, otherPub, _ := newSSHKey("x")
	pk, _, _, _, _ := ssh.ParseAuthorizedKey(otherPub)
	if err := cb(testDNS+":22", remote, pk); err == nil {
		t.Error("known_hosts accepts another key")
	}
}

func TestHostKeyFile(t *testing.T) {
	sd := newStateDir(t.TempDir(), "demo")
	k1, created, err := ensureHostKey(sd, "demo")
	if err != nil || !created {
		t.Fatalf("first ensureHostKey: created %v, %v", created, err)
	}
	fi, err := os.Stat(sd.HostKeyFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, mode %v", err, fi)
	}
	if k1.public.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s", k1.public.Type())
	}
	k2, created, err := ensureHostKey(sd, "demo")
	if err != nil || created || !bytes.Equal(k1.public.Marshal(), k2.public.Marshal()) {
		t.Fatalf("second ensureHostKey must load the same key: created %v, %v", created, err)
	}
	// A warning, and only the public fingerprint, when the instance predates the key.
	sd2 := newStateDir(t.TempDir(), "old")
	var log bytes.Buffer
	if _, err := prepareHostKey(sd2, "old", true, newProgress(&log)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "set up without it") {
		t.Errorf("no warning for an instance without the new host key: %q", log.String())
	}
	if strings.Contains(log.String(), "PRIVATE KEY") {
		t.Error("progress output contains a private key")
	}
}

func TestBootstrapParamsCarryHostKey(t *testing.T) {
	f := newSSHFixture(t)
	st := &State{MLflowUser: "admin", MLflowPassword: "p", FlaskSecretKey: "s", hostKey: f.hk}
	p := bootstrapParams(NamesFor("demo", "123456789012", "eu-west-3"), &session{region: "eu-west-3"}, Config{}, st)
	if p.SSHHostKeyPrivate != string(f.hk.private) || !strings.HasPrefix(p.SSHHostKeyPublic, "ssh-ed25519 ") {
		t.Fatalf("params lack the host key: public %q", p.SSHHostKeyPublic)
	}
	if strings.Contains(p.SSHHostKeyPublic, "\n") {
		t.Error("public host key has a newline")
	}
}

func TestSSHReady(t *testing.T) {
	f := newSSHFixture(t)
	if why := f.t.sshReady(); why != "" {
		t.Fatalf("ready target says %q", why)
	}
	f.t.sshOpen = false
	if why := f.t.sshReady(); !strings.Contains(why, "port 22 closed") || !strings.Contains(why, "--ssh") {
		t.Errorf("closed port: %q", why)
	}
	f.t.sshOpen, f.t.haveKeys = true, false
	if why := f.t.sshReady(); !strings.Contains(why, "no SSH keys") {
		t.Errorf("no keys: %q", why)
	}
}
