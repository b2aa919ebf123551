package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/internal/testhooks"
)

// ingress lists a security group's ingress as "proto port cidr", sorted.
func ingress(t *testing.T, e *env, group string) []string {
	t.Helper()
	var out []string
	for _, p := range stackSGNamed(t, e, group).IpPermissions {
		for _, r := range p.IpRanges {
			out = append(out, fmt.Sprintf("%s %d-%d %s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), aws.ToString(r.CidrIp)))
		}
		if len(p.Ipv6Ranges)+len(p.UserIdGroupPairs)+len(p.PrefixListIds) > 0 {
			out = append(out, fmt.Sprintf("other %+v", p))
		}
	}
	sort.Strings(out)
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSSHPortFollowsFlag: SSH is off by default; `up --ssh` opens tcp 22 to
// the allowed CIDRs only; a later `up` without --ssh closes it again.
func TestSSHPortFollowsFlag(t *testing.T) {
	e := newEnv(t)
	const name = "sshport"
	const other = "203.0.113.0/24"
	up := func(extra ...string) {
		t.Helper()
		args := append([]string{"up"}, e.stackFlags(name)...)
		args = append(args, "--allow-cidr", allowCIDR, "--allow-cidr", other, "--no-wait")
		e.ok(append(args, extra...)...)
	}
	web := []string{"tcp 5000-5000 " + allowCIDR, "tcp 5000-5000 " + other}
	withSSH := []string{"tcp 22-22 " + allowCIDR, "tcp 22-22 " + other, "tcp 5000-5000 " + allowCIDR, "tcp 5000-5000 " + other}

	up()
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, web) {
		t.Fatalf("default up: ingress %v, want %v (no port 22)", got, web)
	}
	up("--ssh")
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, withSSH) {
		t.Fatalf("up --ssh: ingress %v, want %v", got, withSSH)
	}
	// Converged: a second `up --ssh` changes nothing.
	e.rec.reset()
	up("--ssh")
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("second up --ssh made mutating calls: %+v", m)
	}
	up()
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, web) {
		t.Fatalf("up without --ssh after --ssh: ingress %v, want %v (port 22 closed again)", got, web)
	}

	e.ok(append([]string{"down", "--yes"}, e.stackFlags(name)...)...)
	e.assertNothingLeft()
}

// motoConsoleLine is a line of the fixed text moto answers GetConsoleOutput with.
const motoConsoleLine = "Linux version 2.6.16-xenU"

// stackInstance returns the one live instance of a stack.
func stackInstance(t *testing.T, e *env, name string) ec2types.Instance {
	t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:mlstack:stack"), Values: []string{name}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	must(t, err)
	var insts []ec2types.Instance
	for _, r := range out.Reservations {
		insts = append(insts, r.Instances...)
	}
	if len(insts) != 1 {
		t.Fatalf("stack %s has %d live instances, want 1", name, len(insts))
	}
	return insts[0]
}

// assertNoSecrets fails when output shows a private key.
func assertNoSecrets(t *testing.T, dir string, res result) {
	t.Helper()
	all := res.stdout + res.stderr
	if strings.Contains(all, "PRIVATE KEY") {
		t.Fatal("output contains a private key")
	}
	for _, f := range []string{"id_ed25519"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		must(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, l := range lines[1 : len(lines)-1] {
			if strings.Contains(all, l) {
				t.Fatalf("output contains a line of %s", f)
			}
		}
	}
}

// TestSSHAndLogsAgainstOpenSSH: the server makes its host key and publishes
// it in SSM (a stand-in does here); `up --ssh` pins it; a real OpenSSH server
// with that host key and the stack's login key then runs `mlstack ssh --
// echo ok`, passes the exit status on and serves `mlstack logs`; a server
// with another host key is refused.
func TestSSHAndLogsAgainstOpenSSH(t *testing.T) {
	e := newEnv(t)
	const name = "sshe2e"
	dir := filepath.Join(e.stateDir, name)
	flags := e.stackFlags(name)
	up := append(append([]string{"up"}, flags...), "--allow-cidr", allowCIDR, "--ssh", "--no-wait")
	res := e.ok(up...)
	if !strings.Contains(res.stderr, "has not published its certificate and host key yet") {
		t.Errorf("up --no-wait before the server published does not say so:\n%s", res.stderr)
	}
	hostKeyPEM := e.publishNow(name)
	res = e.ok(up...)
	if !strings.Contains(res.stderr, "SSH host key SHA256:") || !strings.Contains(res.stderr, "mlstack ssh --stack "+name) {
		t.Errorf("up --ssh does not say which host key it pinned and how to connect:\n%s", res.stderr)
	}
	assertNoSecrets(t, dir, res)

	// The host key the server published is pinned for the instance's DNS name and IP.
	signer, err := ssh.ParsePrivateKey(hostKeyPEM)
	must(t, err)
	hostPub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	inst := stackInstance(t, e, name)
	known, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	must(t, err)
	fi, err := os.Stat(filepath.Join(dir, "known_hosts"))
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %o", fi.Mode().Perm())
	}
	wantKnown := aws.ToString(inst.PublicDnsName) + "," + aws.ToString(inst.PublicIpAddress) + " " + hostPub + "\n"
	if string(known) != wantKnown {
		t.Errorf("known_hosts = %q, want %q", known, wantKnown)
	}
	checkLocalFiles(t, dir)

	// The server: OpenSSH with mlstack's host key, letting the stack's key in.
	var st struct {
		SSHPublicKey string `json:"ssh_public_key"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &st))
	srv := startSSHD(t, hostKeyPEM, []byte(st.SSHPublicKey))
	via := []string{"--ssh-addr", srv.Addr, "--ssh-user", srv.User}

	res = e.mlstack(append(append(append([]string{"ssh"}, flags...), via...), "--", "echo", "ok")...)
	if res.code != 0 || res.stdout != "ok\n" {
		t.Fatalf("ssh -- echo ok: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
	}
	assertNoSecrets(t, dir, res)
	res = e.mlstack(append(append(append([]string{"ssh"}, flags...), via...), "--", "exit", "7")...)
	if res.code != 7 {
		t.Errorf("ssh -- exit 7: exit %d, want 7 (the remote status)", res.code)
	}

	// logs reads the bootstrap log and the journal through the server.
	logDir := t.TempDir()
	logPath := filepath.Join(logDir, "cloud-init-output.log")
	must(t, os.WriteFile(logPath, []byte("Cloud-init v. 24.1 running 'modules:final'\nmlstack-setup: installing mlflow\n"), 0o600))
	journal := filepath.Join(logDir, "journal")
	must(t, os.WriteFile(journal, []byte("systemd[1]: Started mlflow.service\n"), 0o600))
	res = e.ok(append(append(append([]string{"logs"}, flags...), via...),
		"--bootstrap-log", logPath, "--journal-command", "cat "+journal)...)
	for _, want := range []string{"==> " + logPath + " (bootstrap) <==", "mlstack-setup: installing mlflow", "==> journalctl -u mlflow", "Started mlflow.service"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("logs output lacks %q:\n%s", want, res.stdout)
		}
	}
	assertNoSecrets(t, dir, res)

	// Another host key on the same name: refused, and nothing runs.
	impostorKey, err := exec.Command("sh", "-c", "d=$(mktemp -d) && ssh-keygen -q -t ed25519 -N '' -f $d/k && cat $d/k && rm -r $d").Output()
	if err != nil {
		t.Logf("ssh-keygen: %v", err)
		testenv.Missing(t, "ssh-keygen does not work (Debian: openssh-client)")
	}
	impostor := startSSHD(t, impostorKey, []byte(st.SSHPublicKey))
	marker := filepath.Join(t.TempDir(), "ran")
	res = e.mlstack(append(append(append([]string{"ssh"}, flags...), "--ssh-addr", impostor.Addr, "--ssh-user", impostor.User), "--", "touch", marker)...)
	if res.code == 0 || !strings.Contains(res.stderr, "refusing to connect") || !strings.Contains(res.stderr, "known_hosts") {
		t.Errorf("ssh to a server with another host key: exit %d, stderr %s", res.code, res.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran on a server with another host key")
	}
	res = e.mlstack(append(append(append([]string{"logs"}, flags...), "--ssh-addr", impostor.Addr, "--ssh-user", impostor.User), "--bootstrap-log", logPath)...)
	if res.code == 0 || !strings.Contains(res.stderr, "refusing to connect") || strings.Contains(res.stdout, motoConsoleLine) {
		t.Errorf("logs from a server with another host key: exit %d (must fail, not fall back), stderr %s", res.code, res.stderr)
	}

	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestUpServerNeverPublishes: a server whose bootstrap never publishes its
// certificate makes up stop at the timeout with the bootstrap log and what
// to do next, not wait for /health over a certificate it cannot trust.
func TestUpServerNeverPublishes(t *testing.T) {
	e := newEnv(t)
	const name = "silent"
	flags := e.stackFlags(name)
	res := e.mlstack(append(append([]string{"up"}, flags...), "--allow-cidr", allowCIDR, "--timeout", "2s")...)
	for _, want := range []string{"to publish its TLS certificate and SSH host key in SSM", "gave up after 2s",
		"| " + motoConsoleLine, "mlstack down --stack " + name} {
		if res.code != 1 || !strings.Contains(res.stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", res.code, want, res.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, name, "server.crt")); err == nil {
		t.Error("a certificate was pinned though none was published")
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestLogsConsoleFallback: with SSH off, logs prints the EC2 console output
// and says why; ssh says how to turn SSH on.
func TestLogsConsoleFallback(t *testing.T) {
	e := newEnv(t)
	const name = "consolelogs"
	flags := e.stackFlags(name)
	e.ok(append(append([]string{"up"}, flags...), "--allow-cidr", allowCIDR, "--no-wait")...)
	e.rec.reset()
	res := e.ok(append([]string{"logs"}, flags...)...)
	if !strings.Contains(res.stdout, motoConsoleLine) {
		t.Errorf("logs without SSH did not print the console output:\n%s", res.stdout)
	}
	if !strings.Contains(res.stderr, "port 22 closed") || !strings.Contains(res.stderr, "console output") || !strings.Contains(res.stderr, "--ssh") {
		t.Errorf("logs without SSH does not say why it shows the console and how to get more:\n%s", res.stderr)
	}
	var sawConsole bool
	for _, c := range e.rec.calls() {
		sawConsole = sawConsole || c.Action == "GetConsoleOutput"
	}
	if !sawConsole {
		t.Error("no GetConsoleOutput call recorded")
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("logs made mutating calls: %+v", m)
	}

	res = e.mlstack(append(append([]string{"ssh"}, flags...), "--", "true")...)
	if res.code != 1 || !strings.Contains(res.stderr, "SSH is off") || !strings.Contains(res.stderr, "--allow-cidr "+allowCIDR+" --ssh` opens it") {
		t.Errorf("ssh with port 22 closed: exit %d, stderr %s", res.code, res.stderr)
	}

	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
	res = e.mlstack(append([]string{"logs"}, flags...)...)
	if res.code == 0 || !strings.Contains(res.stderr, "has no instance") {
		t.Errorf("logs of a removed stack: exit %d, stderr %s", res.code, res.stderr)
	}
}

// TestUpHealthTimeoutShowsBootstrapLog: when the server never answers, up
// prints the last lines of the bootstrap log and what to do next.
func TestUpHealthTimeoutShowsBootstrapLog(t *testing.T) {
	e := newEnv(t)
	const name = "unhealthy"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := l.Addr().String()
	l.Close() // nothing answers there
	flags := e.stackFlags(name)
	e.publishAsServer(name)
	res := e.mlstackWith(testhooks.Hooks{HealthURL: "http://" + closed + "/health"},
		append(append([]string{"up"}, flags...), "--allow-cidr", allowCIDR, "--timeout", "3s")...)
	if res.code != 1 {
		t.Fatalf("up with a dead server: exit %d, want 1: %s", res.code, res.stderr)
	}
	for _, want := range []string{
		"not healthy after 3s",
		"lines of the bootstrap log (the instance console output from EC2)",
		"| " + motoConsoleLine,
		"mlstack logs --stack " + name,
		"mlstack up --stack " + name + " --state-dir " + e.stateDir + " --allow-cidr " + allowCIDR + " --ssh",
		"mlstack down --stack " + name,
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestSSHInteractiveShell: without a command, on a terminal, ssh opens a
// shell on a remote pty and exits with the shell's status. script(1)
// (Debian's bsdutils) gives the built binary a terminal.
func TestSSHInteractiveShell(t *testing.T) {
	e := newEnv(t)
	const name = "sshpty"
	dir := filepath.Join(e.stateDir, name)
	flags := e.stackFlags(name)
	e.ok(append(append([]string{"up"}, flags...), "--allow-cidr", allowCIDR, "--ssh", "--no-wait")...)
	defer func() {
		e.ok(append([]string{"down", "--yes"}, flags...)...)
		e.assertNothingLeft()
	}()
	hostKeyPEM := e.publishNow(name) // ssh pins what the server published
	var st struct {
		SSHPublicKey string `json:"ssh_public_key"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &st))
	srv := startSSHD(t, hostKeyPEM, []byte(st.SSHPublicKey))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdin, out := onTerminal(ctx, t, "xterm", append(append([]string{"ssh"}, flags...), "--ssh-addr", srv.Addr, "--ssh-user", srv.User)...)
	// The arithmetic proves the remote shell ran the line, not just echoed it.
	_, err = stdin.Write([]byte("echo pty-$((40+2)); tty; exit 3\n"))
	must(t, err)
	err = cmd.Wait() // closes stdin only after the shell is gone
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("interactive ssh: %v, want exit status 3 (the shell's)\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "pty-42") || !strings.Contains(out.String(), "/dev/pts/") {
		t.Errorf("the shell did not run on a remote pty:\n%s", out.String())
	}
}
