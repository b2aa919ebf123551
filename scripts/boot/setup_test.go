//go:build boottest

package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/mlstack/mlstack/internal/pgtest"
)

// bootTest is the state the phases share. Each field is set by the phase
// (or helper) named and read by later ones.
type bootTest struct {
	t      *testing.T // the parent test: what must outlive a phase is cleaned up with it
	cfg    bootConfig
	repo   string
	work   string // logs, env files, rootfs copies (/var/tmp: rootfs copies are large)
	state  string // mlstack's state dir
	start  time.Time
	end    time.Time // when the phases ended (cleanup starts)
	bin    string    // the mlstack binary
	venv   string    // the MLflow venv the clients run in
	aemm   string    // the ec2-metadata-mock binary
	moto   string    // the private moto's URL (the test's own AWS calls)
	aws    aws.Config
	rec    *awsRecorder // in front of moto: mlstack's and the instance's AWS endpoint
	mlflow string       // the MLflow version the stack runs now

	inst      launchedInstance // findInstance
	imds      *proc            // startIMDS
	hostsLine string           // startIMDS: the /etc/hosts line, "" when not there
	box       *container       // bootContainer
	up        *proc            // launchUp: the background up (or upgrade)
	// takenLogin: the next up is to refuse to reset this user's password
	// (followLoginHint).
	takenLogin string
	upJSON     string // launchUp: its stdout file

	bootStart     time.Time     // bootContainer
	bootToHealthy time.Duration // the first waitHealthy
	stopped       time.Time     // backupThenStop
	replacedIn    []string      // clean stop to healthy, per replacement
	rss, rssUI    rssFacts      // measureRSS, reportNumbers
	privateKeys   []string      // checkPins: the instance's private key files
	roleTokens    []string      // findInstance: every role session token
	cert          string        // checkPins: the pinned certificate
	password      string        // runClient: alice's password
	runID, bucket string        // runClient
	artifactKey   string        // runClient
	backupLine    string        // phaseBackup: what the backup said it cost
	pg            *pgtest.Server
}

// newBootTest checks the machine, takes the run lock, and starts what
// every phase needs: the work dir, moto and its recording proxy, the
// binaries. Everything is undone when t ends.
func newBootTest(t *testing.T, cfg bootConfig) *bootTest {
	b := &bootTest{t: t, cfg: cfg, repo: repoRoot(t), start: time.Now(), mlflow: cfg.mlflowVersion}
	b.needRoot(t)
	b.lock(t)
	work, err := os.MkdirTemp("/var/tmp", "mlstack-boot.")
	if err != nil {
		t.Fatal(err)
	}
	b.work, b.state = work, filepath.Join(work, "state")
	t.Cleanup(func() {
		if cfg.keep {
			t.Logf("kept %s", work)
			return
		}
		start := time.Now()
		os.RemoveAll(work)
		t.Logf("cleanup: the processes stopped in %.1f s, the work dir removed in %.1f s",
			start.Sub(b.end).Seconds(), time.Since(start).Seconds())
	})
	b.writeSecretFile(t)
	if err := os.MkdirAll(filepath.Join(work, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	b.tools(t)
	b.startMoto(t)
	if cfg.db == "postgres" {
		b.startRDS(t) // here: it must outlive the phases, and t.Fatal only works in its own test
	}
	t.Logf("configuration %s; work dir %s; moto %s behind %s", cfg.name(), work, b.moto, b.rec.url)
	return b
}

// needRoot: root and the tools the test runs.
func (b *bootTest) needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("must run as root (systemd-nspawn, /etc/hosts, an address on lo, port 80)")
	}
	tools := []string{"systemd-nspawn", "nsenter", "ip", "go", "cp", "chromium"}
	if b.cfg.db == "postgres" {
		tools = append(tools, "psql", "runuser")
	}
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing tools: %s (Debian: apt-get install systemd-container util-linux iproute2 chromium postgresql)", strings.Join(missing, " "))
	}
	if _, err := os.Stat(filepath.Join(b.cfg.rootfs, "etc", "cloud")); err != nil {
		t.Fatalf("MLSTACK_BOOT_ROOTFS=%s is not a rootfs with cloud-init: %v", b.cfg.rootfs, err)
	}
}

// lock: one boot test at a time per machine: port 5000, port 80, the IMDS
// address and /etc/hosts are machine-wide. The lock goes with the process.
func (b *bootTest) lock(t *testing.T) {
	if err := os.MkdirAll(b.cfg.cache, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(b.cfg.cache, "run.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return
	}
	t.Log("another boot test is running; waiting for it (up to 30 min)")
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Minute):
		t.Fatalf("another boot test still holds %s", f.Name())
	}
}

// tools: the binaries this run uses, and the ports the booted server and
// the IMDS emulator need.
func (b *bootTest) tools(t *testing.T) {
	b.bin = filepath.Join(b.work, "mlstack")
	b.run(t, 5*time.Minute, b.command("go", "build", "-o", b.bin, "./cmd/mlstack"))
	b.aemm = b.ensureAEMM(t)
	b.venv = os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if b.venv == "" {
		out := b.run(t, 20*time.Minute, b.command(filepath.Join(b.repo, "scripts", "mlflow-venv.sh")))
		b.venv = strings.TrimSpace(out)
	}
	for _, addr := range []string{"127.0.0.1:5000", "127.0.0.1:80"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s is taken on this machine; the booted server (5000) and the IMDS emulator (80) need it", addr)
		}
	}
}

// ensureAEMM is ec2-metadata-mock, built once from the Go module proxy
// into the cache.
func (b *bootTest) ensureAEMM(t *testing.T) string {
	bin := filepath.Join(b.cfg.cache, "bin", "ec2-metadata-mock-"+aemmVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	tmp := filepath.Join(b.work, "gobin")
	cmd := b.command("go", "install", "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@"+aemmVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	b.run(t, 10*time.Minute, cmd)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(tmp, "ec2-metadata-mock"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// startMoto: a private moto (scripts/moto.sh, its files in work/moto), not
// the one scripts/test.sh shares, and the recording proxy in front of it.
func (b *bootTest) startMoto(t *testing.T) {
	dir := filepath.Join(b.work, "moto")
	script := filepath.Join(b.repo, "scripts", "moto.sh")
	start := b.command(script, "start")
	start.Env = append(os.Environ(), "MLSTACK_MOTO_DIR="+dir)
	// moto.sh leaves moto running in its process group: the group's
	// cleanup (registered by run) is the backstop for `moto.sh stop`.
	out := b.runIn(t, t, 3*time.Minute, start)
	t.Cleanup(func() {
		stop := exec.Command(script, "stop")
		stop.Env = append(os.Environ(), "MLSTACK_MOTO_DIR="+dir)
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("moto.sh stop: %v\n%s", err, out)
		}
	})
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export AWS_ENDPOINT_URL="); ok {
			b.moto = v
		}
	}
	if b.moto == "" {
		t.Fatalf("moto.sh start printed no AWS_ENDPOINT_URL:\n%s", out)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(bootRegion), config.WithBaseEndpoint(b.moto),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	b.aws = cfg
	b.rec = startRecorder(t, b.moto)
}

// cliEnv is the environment of every mlstack command: this one's, but
// with moto's test account through the recording proxy, and no other AWS
// identity or endpoint.
func (b *bootTest) cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		aws := strings.HasPrefix(k, "AWS_") && k != "AWS_CA_BUNDLE"
		if !aws && !strings.HasPrefix(k, "MLSTACK_TEST_MOTO") && k != "HOME" {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+filepath.Join(b.work, "home"), "AWS_ENDPOINT_URL="+b.rec.url,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION="+bootRegion,
		"AWS_REGION="+bootRegion, "AWS_EC2_METADATA_DISABLED=true")
}

// mlstack runs an mlstack command to its end and returns its stdout; a
// non-zero exit fails t, with the (masked) output.
func (b *bootTest) mlstack(t *testing.T, args ...string) string {
	t.Helper()
	out, err := b.tryMlstack(t, args...)
	if err != nil {
		t.Fatalf("mlstack %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// tryMlstack is mlstack without failing: the error holds the masked
// stdout and stderr.
func (b *bootTest) tryMlstack(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--stack", bootStack, "--state-dir", b.state)
	cmd := exec.Command(b.bin, args...)
	cmd.Env = b.cliEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := b.wait(t, b.startProc(t, t, cmd), 20*time.Minute); err != nil {
		return stdout.String(), &cmdError{err: err, out: b.mask(stdout.String() + stderr.String())}
	}
	return stdout.String(), nil
}
