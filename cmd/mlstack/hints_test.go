package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/server"
)

// The commands mlstack prints for the user to run next are run here as
// printed: pasted into bash, with mlstack the built binary on PATH.

// hintRe finds a quoted mlstack command in a message.
var hintRe = regexp.MustCompile("`(mlstack [^`]+)`")

// hintsIn returns the mlstack commands quoted in text, in order.
func hintsIn(text string) []string {
	var out []string
	for _, m := range hintRe.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// hintWith returns the one quoted command of text that starts with prefix.
func hintWith(t *testing.T, text, prefix string) string {
	t.Helper()
	for _, h := range hintsIn(text) {
		if strings.HasPrefix(h, prefix) {
			return h
		}
	}
	t.Fatalf("no `%s…` hint in:\n%s", prefix, text)
	return ""
}

// hintShell is a PATH folder with mlstack (the built binary, given the
// test's local stand-ins for the internet as status and down need them)
// and a curl that answers as checkip.amazonaws.com would, with addr.
func hintShell(t *testing.T, addr string) string {
	t.Helper()
	dir := t.TempDir()
	startLocalServers()
	wrapper := fmt.Sprintf(`#!/bin/sh
case "$1" in
up) exec %[1]q "$@" --health-url %[4]q ;;
status) exec %[1]q "$@" --health-url %[2]q ;;
down) exec %[1]q "$@" --tracking-uri %[3]q ;;
*) exec %[1]q "$@" ;;
esac
`, binary(t), localServerURL+"/health", localServerURL, localHealthyURL+"/health")
	must(t, os.WriteFile(filepath.Join(dir, "mlstack"), []byte(wrapper), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "curl"), []byte("#!/bin/sh\necho "+addr+"\n"), 0o755))
	return dir
}

// runHint runs line in bash in dir, as a user pastes it.
func (e *env) runHint(dir, line string) result {
	e.t.Helper()
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = dir
	// A home of its own: a hint that dropped --state-dir would use the
	// default state dir there, and fail, rather than the user's.
	home := e.t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+hintShell(e.t, "203.0.113.9")+":"+os.Getenv("PATH"),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	e.t.Logf("$ %s → exit %d\n%s", line, code, errb.String())
	harvestSecrets(e.stateDir)
	recordOutput("hint "+line+" (stderr)", errb.String())
	if !strings.Contains(line, " env ") {
		recordOutput("hint "+line+" (stdout)", out.String())
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// okHint runs a hint and fails the test unless it exits 0.
func (e *env) okHint(line string) result {
	e.t.Helper()
	res := e.runHint(e.t.TempDir(), line)
	if res.code != 0 {
		e.t.Fatalf("hint `%s`: exit %d\n%s", line, res.code, res.stderr)
	}
	return res
}

// TestUpHintsRunAsPrinted: after an up with --state-dir, --region and a
// CIDR of its own, the commands it prints run as printed: the env line
// appends working variables to .envrc, the eval form works in a shell;
// the health timeout's hints open SSH without narrowing the allowed CIDRs,
// show the logs, and remove the stack.
func TestUpHintsRunAsPrinted(t *testing.T) {
	e := newEnv(t)
	const name = "hinted"
	cidr := "203.0.113.0/24" // not the caller's address: a hint without it would narrow the group
	flags := []string{"--stack", name, "--state-dir", filepath.Join(e.stateDir, "my state"), "--region", testRegion}
	res := e.ok(append([]string{"up", "--no-wait", "--allow-cidr", cidr}, flags...)...)
	envLine := hintWith(t, res.stderr, "mlstack env")
	project := t.TempDir()
	if !strings.HasSuffix(envLine, " >> .envrc") {
		t.Fatalf("the ready line says %q", envLine)
	}
	if r := e.runHint(project, envLine); r.code != 0 {
		t.Fatalf("`%s`: exit %d: %s", envLine, r.code, r.stderr)
	}
	data, err := os.ReadFile(filepath.Join(project, ".envrc"))
	must(t, err)
	vars := sourceEnv(t, string(data))
	uri := strings.TrimSpace(res.stdout)
	if vars["MLFLOW_TRACKING_URI"] != uri || vars["AWS_ACCESS_KEY_ID"] == "" {
		t.Errorf(".envrc from the printed command lacks the stack's variables (URI %q)", vars["MLFLOW_TRACKING_URI"])
	}
	evalForm := regexp.MustCompile("`(eval \"\\$\\(mlstack env [^`]+\\)\")`").FindStringSubmatch(res.stderr)
	if evalForm == nil {
		t.Fatalf("no eval form in:\n%s", res.stderr)
	}
	if r := e.runHint(project, evalForm[1]+` && test "$MLFLOW_TRACKING_URI" = `+shellQuote(uri)); r.code != 0 {
		t.Errorf("`%s`: exit %d: %s", evalForm[1], r.code, r.stderr)
	}

	// The health wait gives up: its hints open SSH, show logs, remove it.
	e.publishNow(name) // as the booted server would
	dead := closedURL(t)
	res = e.mlstackWith(testhooks.Hooks{HealthURL: dead}, append([]string{"up", "--allow-cidr", cidr, "--timeout", "1s"}, flags...)...)
	if res.code != 1 {
		t.Fatalf("up with a dead server: exit %d: %s", res.code, res.stderr)
	}
	e.okHint(hintWith(t, res.stderr, "mlstack up"))
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, []string{"tcp 22-22 " + cidr, "tcp 5000-5000 " + cidr}) {
		t.Errorf("the printed up changed the allowed CIDRs or left SSH closed: %v", got)
	}
	logs := e.okHint(hintWith(t, res.stderr, "mlstack logs"))
	if !strings.Contains(logs.stdout, motoConsoleLine) {
		t.Errorf("the printed logs command printed no log:\n%s", logs.stdout)
	}
	e.okHint(hintWith(t, res.stderr, "mlstack down"))
	e.assertNothingLeft()
}

// closedURL is a /health URL where nothing listens.
func closedURL(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/health"
	srv.Close()
	return u
}

// TestStallHintRunsAsPrinted: when connections time out, the printed up
// adds the address the shell's curl reports to the CIDRs already allowed.
func TestStallHintRunsAsPrinted(t *testing.T) {
	old := server.DiagnoseAfter
	server.DiagnoseAfter = 100 * time.Millisecond
	t.Cleanup(func() { server.DiagnoseAfter = old })
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGatewayTimeout) }))
	t.Cleanup(gateway.Close)
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("stall")...)...)
	e.publishNow("stall")
	res := e.mlstackWith(testhooks.Hooks{HealthURL: gateway.URL}, append([]string{"up", "--timeout", "2s", "--allow-cidr", allowCIDR}, e.stackFlags("stall")...)...)
	hint := hintWith(t, res.stderr, "mlstack up")
	e.okHint(hint)
	if got := ingress(t, e, "mlstack-stall"); !sameStrings(got, []string{"tcp 5000-5000 " + allowCIDR, "tcp 5000-5000 203.0.113.9/32"}) {
		t.Errorf("after `%s`: ingress %v", hint, got)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("stall")...)...)
	e.assertNothingLeft()
}

// TestSSHHintRunsAsPrinted: ssh on a stack without SSH prints the up that
// opens it, keeping the allowed CIDRs.
func TestSSHHintRunsAsPrinted(t *testing.T) {
	e := newEnv(t)
	cidr := "203.0.113.0/24"
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", cidr}, e.stackFlags("nossh")...)...)
	e.publishNow("nossh")
	res := e.mlstack(append([]string{"ssh"}, append(e.stackFlags("nossh"), "--", "true")...)...)
	e.okHint(hintWith(t, res.stderr, "mlstack up"))
	if got := ingress(t, e, "mlstack-nossh"); !sameStrings(got, []string{"tcp 22-22 " + cidr, "tcp 5000-5000 " + cidr}) {
		t.Errorf("ingress after the printed up: %v", got)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("nossh")...)...)
	e.assertNothingLeft()
}

// TestLeftBehindHintRunsAsPrinted: a down that leaves something prints the
// down that finishes the job, with the flags in use.
func TestLeftBehindHintRunsAsPrinted(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.stateDir, "other place")
	flags := []string{"--stack", "left", "--state-dir", dir}
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	e.rec.setFaults(newFaults(1).failFirst("DeleteUser", 100, "ServiceFailure", "try later"))
	res := e.mlstack(append([]string{"down", "--yes"}, flags...)...)
	e.rec.setFaults(nil)
	if res.code != 3 {
		t.Fatalf("down with DeleteUser failing: exit %d: %s", res.code, res.stderr)
	}
	e.okHint(hintWith(t, res.stderr, "mlstack down"))
	e.assertNothingLeft()
	if _, err := os.Stat(filepath.Join(dir, "left")); !os.IsNotExist(err) {
		t.Errorf("the printed down did not remove the local state in %s", dir)
	}
}

// TestInterruptHintRunsAsPrinted: an interrupted up names the stack and
// the flags in use in both commands it prints, and both run.
func TestInterruptHintRunsAsPrinted(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.stateDir, "a b")
	args := []string{"up", "--no-wait", "--allow-cidr", allowCIDR, "--stack", "cut", "--state-dir", dir}
	proc := exec.Command(binary(t), args...)
	var stderr bytes.Buffer
	proc.Stderr = &stderr
	started := make(chan struct{})
	f := newFaults(1)
	f.onCall = func(i int) {
		if i == 8 {
			<-started // proc.Process is set
			_ = proc.Process.Signal(syscall.SIGINT)
		}
	}
	e.rec.setFaults(f)
	must(t, proc.Start())
	close(started)
	_ = proc.Wait()
	e.rec.setFaults(nil)
	recordOutput("interrupted up (stderr)", stderr.String())
	if code := proc.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130: %s", code, stderr.String())
	}
	hs := hintsIn(stderr.String())
	if len(hs) != 2 || strings.Contains(stderr.String(), "NAME") {
		t.Fatalf("hints %q in:\n%s", hs, stderr.String())
	}
	e.okHint(hs[0])
	e.okHint(hs[1])
	e.assertNothingLeft()
	// The printed down removed the local state where the up kept it.
	if _, err := os.Stat(filepath.Join(dir, "cut")); !os.IsNotExist(err) {
		t.Errorf("after `%s` the stack's local state is still in %s", hs[1], dir)
	}
}

// TestCredsHintRunsAsPrinted: creds rotate with no instance and no env
// file here prints the up that launches one and writes the env file,
// keeping the allowed CIDRs.
func TestCredsHintRunsAsPrinted(t *testing.T) {
	e := newEnv(t)
	cidr := "203.0.113.0/24"
	flags := e.stackFlags("rot2")
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", cidr}, flags...)...)
	e.publishNow("rot2")
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", cidr}, flags...)...) // pins what the server published
	e.terminate(aws.ToString(stackInstance(t, e, "rot2").InstanceId))
	envFile := filepath.Join(e.stateDir, "rot2", "env")
	must(t, os.Remove(envFile))
	res := e.ok(append([]string{"creds", "rotate", "--skip-mlflow"}, flags...)...)
	e.publishAsServer("rot2") // for the instance the printed up launches
	e.okHint(hintWith(t, res.stderr, "mlstack up"))
	if got := ingress(t, e, "mlstack-rot2"); !sameStrings(got, []string{"tcp 5000-5000 " + cidr}) {
		t.Errorf("ingress after the printed up: %v", got)
	}
	if _, err := os.Stat(envFile); err != nil {
		t.Errorf("the printed up wrote no env file: %v", err)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestEnvOfNoStack: env of a stack that does not exist (or no longer:
// after down) says so and how to create it; creds rotate would not help.
func TestEnvOfNoStack(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("gone")...)...)
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("gone")...)...)
	res := e.mlstack(append([]string{"env"}, e.stackFlags("gone")...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "stack gone does not exist in account "+account) || strings.Contains(res.stderr, "creds rotate") ||
		hintWith(t, res.stderr, "mlstack up") != "mlstack up --stack gone --state-dir "+e.stateDir {
		t.Errorf("env after down: exit %d: %s", res.code, res.stderr)
	}
	// A stack that exists elsewhere: its secrets are there, or rotate here.
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("there")...)...)
	fresh := t.TempDir()
	res = e.mlstack("env", "--stack", "there", "--state-dir", fresh)
	if res.code != 1 || hintWith(t, res.stderr, "mlstack creds rotate") != "mlstack creds rotate --stack there --state-dir "+fresh {
		t.Errorf("env of a stack made elsewhere: exit %d: %s", res.code, res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("there")...)...)
	e.assertNothingLeft()
}
