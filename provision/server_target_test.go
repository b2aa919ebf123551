package provision

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
	"golang.org/x/crypto/ssh"
)

const (
	testDNS = "ec2-203-0-113-9.eu-west-3.compute.amazonaws.com"
	testIP  = "203.0.113.9"
)

// consoleEC2 answers GetConsoleOutput with text (base64, as EC2 does).
type consoleEC2 struct {
	cloud.EC2API
	text string
}

func (c *consoleEC2) GetConsoleOutput(_ context.Context, in *ec2.GetConsoleOutputInput, _ ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	return &ec2.GetConsoleOutputOutput{InstanceId: in.InstanceId, Output: aws.String(base64.StdEncoding.EncodeToString([]byte(c.text)))}, nil
}

// testHostKey is a host key as the instance makes it (here, for a test sshd).
type testHostKey struct {
	Private []byte
	Public  ssh.PublicKey
}

func newTestHostKey(t *testing.T) testHostKey {
	t.Helper()
	priv, line, err := local.NewSSHKey("host")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return testHostKey{Private: priv, Public: pub}
}

// sshFixture is a stack as up leaves it on this machine, for an instance
// at testDNS / testIP whose console output EC2 serves.
type sshFixture struct {
	dir        local.Dir
	hk         testHostKey
	authorized []byte
	t          *target
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	d := local.StackDir(t.TempDir(), "demo")
	hk := newTestHostKey(t)
	priv, pub, err := local.NewSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(d.SaveSSHKey(priv), d.SavePinnedHostKey(hk.Public)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteKnownHosts([]string{testDNS, testIP}, hk.Public); err != nil {
		t.Fatal(err)
	}
	inst := &ec2types.Instance{
		InstanceId: aws.String("i-0123456789abcdef0"), PublicDnsName: aws.String(testDNS), PublicIpAddress: aws.String(testIP),
		State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
	}
	s := &cloud.Session{EC2: &consoleEC2{text: "[ 0.0] Linux\r\nconsole line 1\r\nconsole line 2\r\n"}}
	return &sshFixture{dir: d, hk: hk, authorized: pub, t: newTarget(hints{stack: "demo"}, d, s, inst, true)}
}

func TestSSHReady(t *testing.T) {
	t.Parallel()
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
	f.t.haveKeys, f.t.inst.State.Name = true, ec2types.InstanceStateNameStopped
	if why := f.t.sshReady(); !strings.Contains(why, "stopped, not running") {
		t.Errorf("stopped instance: %q", why)
	}
	f.t.host = ""
	if why := f.t.sshReady(); !strings.Contains(why, "no public DNS name or IP") {
		t.Errorf("no address: %q", why)
	}
	if (&sshFixture{}).dir.HasSSHKeys() {
		t.Error("an empty dir has keys")
	}
}

// TestBootstrapTail: over SSH when it is open (a real sshd), else from the
// console output; never from the console when the host key is wrong.
func TestBootstrapTail(t *testing.T) {
	t.Parallel()
	f := newSSHFixture(t)
	srv := sshdtest.Start(t, f.hk.Private, f.authorized)
	logPath := filepath.Join(t.TempDir(), "cloud-init-output.log")
	if err := os.WriteFile(logPath, []byte("one\ntwo\nthree\nfour\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := server.Remote{Addr: srv.Addr, User: srv.User}
	lo := server.LogOptions{BootstrapLog: logPath}
	var log bytes.Buffer
	lines, source, err := f.t.bootstrapTail(context.Background(), remote, lo, 2, newProgress(&log))
	if err != nil || strings.Join(lines, "|") != "three|four" || source != logPath+" over SSH" {
		t.Fatalf("over SSH: %q from %q, %v", lines, source, err)
	}

	f.t.sshOpen = false
	lines, source, err = f.t.bootstrapTail(context.Background(), remote, lo, 2, newProgress(&log))
	if err != nil || strings.Join(lines, "|") != "console line 1|console line 2" || !strings.Contains(source, "console output") {
		t.Fatalf("SSH closed: %q from %q, %v", lines, source, err)
	}

	f.t.sshOpen = true
	other := newTestHostKey(t)
	impostor := sshdtest.Start(t, other.Private, f.authorized)
	_, _, err = f.t.bootstrapTail(context.Background(), server.Remote{Addr: impostor.Addr, User: impostor.User}, lo, 2, newProgress(&log))
	var mismatch *server.HostKeyMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("impostor: %v, want a host key refusal and no console fallback", err)
	}
}

// TestExplainUnhealthy: up's health timeout names the log lines and the next steps.
func TestExplainUnhealthy(t *testing.T) {
	t.Parallel()
	f := newSSHFixture(t)
	f.t.sshOpen = false
	var log bytes.Buffer
	err := f.t.explainUnhealthy(context.Background(), errors.New("not healthy after 1s"), newProgress(&log))
	for _, want := range []string{"not healthy after 1s", "mlstack up --stack demo --ssh", "mlstack down --stack demo"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if !strings.Contains(log.String(), "| console line 2") {
		t.Errorf("log tail not shown:\n%s", log.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.t.explainUnhealthy(ctx, context.Canceled, newProgress(io.Discard)); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "keep waiting") {
		t.Errorf("interrupted wait: %v", err)
	}
}

func TestConsoleOutputDecoded(t *testing.T) {
	t.Parallel()
	text, err := cloud.ConsoleOutput(context.Background(), &consoleEC2{text: "a\r\nb\r\n"}, "i-1")
	if err != nil || text != "a\nb\n" {
		t.Errorf("consoleOutput = %q, %v", text, err)
	}
}

// TestRenderHoldsNoSecret: the one user-data render carries no secret of
// the stack (they go to SSM) and no private key (the server makes its own),
// and nothing is written here before keepLocal.
func TestRenderHoldsNoSecret(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	r := &upRun{
		o:           UpOptions{Stack: Stack{Name: "demo", StateDir: root}, MLflowVersion: cloudinit.DefaultMLflowVersion},
		openedStack: &openedStack{s: &cloud.Session{Region: "eu-west-3", Account: "123456789012"}, n: cloud.NamesFor("demo", "123456789012", "eu-west-3"), dir: local.StackDir(root, "demo")},
		log:         newProgress(io.Discard),
	}
	if err := r.makeLocal(); err != nil {
		t.Fatal(err)
	}
	if err := r.render(); err != nil {
		t.Fatal(err)
	}
	sec := r.keep.secrets
	for _, secret := range []string{sec.MLflowPassword, sec.FlaskSecretKey, "PRIVATE KEY"} {
		if secret == "" || strings.Contains(cloudfake.UserDataText(t, r.userData), secret) {
			t.Errorf("user-data holds a secret (or the secret is empty): %.6s…", secret)
		}
	}
	if r.keep.loginKey == nil {
		t.Error("no login key generated")
	}
	if _, err := os.Stat(filepath.Join(root, "demo")); !os.IsNotExist(err) {
		t.Errorf("preflight wrote local files: %v", err)
	}
	r.n.Bucket = "Not_A_Bucket"
	if err := r.render(); !cloud.IsUsage(err) || !strings.Contains(err.Error(), "bootstrap parameters") {
		t.Errorf("bad parameters: %v, want a usage error", err)
	}
}

// TestRenderArchAndLock: the user-data carries the lock's part for the
// instance type's architecture, gzip-compressed within EC2's limit, and up
// says when the MLflow version is not the locked one.
func TestRenderArchAndLock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		arch              ec2types.ArchitectureValues
		version           string
		wantArch, notArch string
		warn              bool
	}{
		{ec2types.ArchitectureValuesX8664, cloudinit.DefaultMLflowVersion, "x86_64", "aarch64", false},
		{ec2types.ArchitectureValuesArm64, cloudinit.DefaultMLflowVersion, "aarch64", "x86_64", false},
		{ec2types.ArchitectureValuesX8664, "3.5.0", "x86_64", "aarch64", true},
	} {
		t.Run(string(tt.arch)+" "+tt.version, func(t *testing.T) {
			root := t.TempDir()
			var log bytes.Buffer
			r := &upRun{
				o:           UpOptions{Stack: Stack{Name: "demo", StateDir: root}, MLflowVersion: tt.version},
				openedStack: &openedStack{s: &cloud.Session{Region: "eu-west-3", Account: "123456789012"}, n: cloud.NamesFor("demo", "123456789012", "eu-west-3"), dir: local.StackDir(root, "demo")},
				log:         newProgress(&log),
				arch:        tt.arch,
			}
			if err := r.makeLocal(); err != nil {
				t.Fatal(err)
			}
			if err := r.render(); err != nil {
				t.Fatal(err)
			}
			if len(r.userData) > cloudinit.MaxUserDataSize || !bytes.HasPrefix(r.userData, []byte{0x1f, 0x8b}) {
				t.Errorf("user-data: %d bytes, gzip %v; want gzip within %d", len(r.userData), bytes.HasPrefix(r.userData, []byte{0x1f, 0x8b}), cloudinit.MaxUserDataSize)
			}
			doc := cloudfake.UserDataText(t, r.userData)
			targets := "#@ targets 3.11-" + tt.wantArch + " 3.12-" + tt.wantArch + " 3.13-" + tt.wantArch + "\n"
			lock := string(r.bootstrap[0].Body)
			if len(r.bootstrap) != 1 || !strings.Contains(lock, targets) || strings.Contains(lock, `platform_machine == "`+tt.notArch) ||
				!strings.Contains(doc, r.bootstrap[0].Key) || !strings.Contains(doc, r.bootstrap[0].SHA256) {
				t.Errorf("the user-data does not fetch the %s lock alone, pinned", tt.wantArch)
			}
			warned := strings.Contains(log.String(), "! MLflow 3.5.0 is not the locked "+cloudinit.DefaultMLflowVersion)
			if warned != tt.warn {
				t.Errorf("warning %v, want %v; progress:\n%s", warned, tt.warn, log.String())
			}
		})
	}
}
