package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// faults is the fault-injecting proxy (the recorder in front of moto)
// over internal/awsmodel's one injector, the one provision's fake uses:
// rules per action, then seeded chances, so a failing run repeats.
type faults struct {
	model  *awsmodel.Faults
	onCall func(n int) // sees the running call count (interrupts)
}

func newFaults(seed int64) *faults { return &faults{model: awsmodel.NewFaults(seed)} }

// failFirst makes the first n calls of action fail with code and message.
func (f *faults) failFirst(action string, n int, code, message string) *faults {
	f.model.FailNext(action, &awsmodel.Error{Code: code, Message: message, Status: http.StatusBadRequest}, n)
	return f
}

// loseFirst loses the answers of the first n calls of action, after moto
// did the work: the SDK sends the call again.
func (f *faults) loseFirst(action string, n int) *faults {
	f.model.LoseNext(action, n)
	return f
}

// chances sets the fractions of calls throttled, dropped before moto sees
// them, and dropped after moto did the work (the response is lost).
func (f *faults) chances(throttle, dropBefore, dropAfter float64) *faults {
	f.model.SetChances(awsmodel.Chances{Throttle: throttle, DropBefore: dropBefore, DropAfter: dropAfter})
	return f
}

// apply injects the model's fault for this call, or returns false to let
// it through.
func (f *faults) apply(w http.ResponseWriter, req *http.Request, call apiCall, n int, proxy http.Handler) bool {
	if f.onCall != nil {
		f.onCall(n)
	}
	d := f.model.Before(call.Service, call.Action, nil)
	if d == nil {
		if !f.model.HasAfter(call.Action) {
			return false
		}
		// Held back: the answer of a call that succeeded may be lost.
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, req)
		if rec.Code < 300 {
			d = f.model.After(call.Action, nil)
		}
		if d == nil {
			copyAnswer(w, rec)
			return true
		}
	} else if d.After {
		proxy.ServeHTTP(httptest.NewRecorder(), req) // moto does the work; the answer is lost
	}
	if d.Drop {
		hangUp(w)
	} else {
		writeModelError(w, call.Service, d.Err)
	}
	return true
}

// copyAnswer passes on an answer held back.
func copyAnswer(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (f *faults) report() string { return f.model.Report() }

// writeAWSError answers in the service's own error format, so the SDK
// parses a real error code from it.
func writeAWSError(w http.ResponseWriter, service string, status int, code, message string) {
	awsmodel.WriteError(w, service, status, code, message)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("proxy cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

// lifecycle runs up, checks exactly one instance and one access key, re-runs
// up, then down, and proves nothing is left.
func lifecycle(t *testing.T, e *env, stackName string) {
	t.Helper()
	flags := append([]string{"--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags(stackName)...)
	if res := e.mlstack(append([]string{"up"}, flags...)...); res.code != 0 {
		t.Fatalf("up under faults: exit %d: %s", res.code, res.stderr)
	}
	e.assertExactlyOne(stackName)
	if res := e.mlstack(append([]string{"up"}, flags...)...); res.code != 0 {
		t.Fatalf("second up under faults: exit %d: %s", res.code, res.stderr)
	}
	e.assertExactlyOne(stackName)
	if res := e.mlstack(append([]string{"down", "--yes"}, e.stackFlags(stackName)...)...); res.code != 0 {
		t.Fatalf("down under faults: exit %d: %s", res.code, res.stderr)
	}
	e.assertNothingLeft()
}

// assertExactlyOne: one of each resource of the stack, one access key.
func (e *env) assertExactlyOne(stackName string) {
	e.t.Helper()
	count := map[string]int{}
	for _, r := range e.everything() {
		count[strings.SplitN(r, " ", 2)[0]]++
	}
	for _, kind := range []string{"iam-user", "access-key", "iam-role", "instance-profile", "bucket", "instance", "security-group", "key-pair"} {
		if count[kind] != 1 {
			e.t.Errorf("%s: %d of them, want exactly 1 (all: %v)", kind, count[kind], e.everything())
		}
	}
	keys, err := e.iam.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String("mlstack-" + stackName)})
	must(e.t, err)
	st := readState(e.t, filepath.Join(e.stateDir, stackName))
	if len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != st.AccessKeyID {
		e.t.Errorf("the one access key must be the saved one")
	}
}

// TestFaultScenarios: each fault class alone and mixed; after each, the
// stack converged to exactly one of everything and down left nothing.
func TestFaultScenarios(t *testing.T) {
	profileErr := "Value (mlstack-f-server) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
	tests := []struct {
		name   string
		faults func() *faults
	}{
		{"throttling 30%", func() *faults { return newFaults(1).chances(0.3, 0, 0) }},
		{"dropped connections before 15%", func() *faults { return newFaults(2).chances(0, 0.15, 0) }},
		{"lost responses 15%", func() *faults { return newFaults(3).chances(0, 0, 0.15) }},
		{"instance profile propagation", func() *faults {
			return newFaults(4).failFirst("RunInstances", 3, "InvalidParameterValue", profileErr)
		}},
		{"new IAM entities invisible", func() *faults {
			return newFaults(5).failFirst("PutUserPolicy", 2, "NoSuchEntity", "The user with name mlstack-f cannot be found.").
				failFirst("AddRoleToInstanceProfile", 1, "NoSuchEntity", "Instance Profile mlstack-f-server cannot be found.").
				failFirst("CreateAccessKey", 1, "NoSuchEntity", "The user with name mlstack-f cannot be found.")
		}},
		{"lost TerminateInstances answer", func() *faults { return newFaults(9).loseFirst("TerminateInstances", 1) }},
		{"security group dependency violation", func() *faults {
			return newFaults(6).failFirst("DeleteSecurityGroup", 3, "DependencyViolation", "resource sg has a dependent object")
		}},
		{"mixed", func() *faults {
			return newFaults(7).failFirst("RunInstances", 2, "InvalidParameterValue", profileErr).
				failFirst("DeleteSecurityGroup", 2, "DependencyViolation", "resource sg has a dependent object").
				chances(0.15, 0.05, 0.05)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := tc.faults()
			e.rec.setFaults(f)
			lifecycle(t, e, "f")
			t.Logf("injected: %s", f.report())
		})
	}
}

// TestPermanentFailureThenConverge: an up that fails half-way is finished
// by the next up, and down after it leaves nothing.
func TestPermanentFailureThenConverge(t *testing.T) {
	e := newEnv(t)
	e.rec.setFaults(newFaults(8).failFirst("RunInstances", 1000, "InsufficientInstanceCapacity", "no capacity (injected)"))
	flags := append([]string{"--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("half")...)
	res := e.mlstack(append([]string{"up"}, flags...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "InsufficientInstanceCapacity") || !strings.Contains(res.stderr, "mlstack up") {
		t.Fatalf("up with no capacity: exit %d, stderr %q", res.code, res.stderr)
	}
	e.rec.setFaults(nil)
	lifecycle(t, e, "half")
}

// TestConcurrentUp: two mlstack processes run up of one stack at once (one
// machine): they end with exactly one of each resource.
func TestConcurrentUp(t *testing.T) {
	bin := binary(t)
	e := newEnv(t)
	flags := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("twins")...)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, flags...)
			var outb, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &outb, &errb
			err := cmd.Run()
			recordOutput(fmt.Sprintf("concurrent up %d (stdout)", i), outb.String())
			recordOutput(fmt.Sprintf("concurrent up %d (stderr)", i), errb.String())
			if err != nil {
				t.Errorf("concurrent up %d: %v: %s", i, err, errb.String())
			}
		}()
	}
	wg.Wait()
	harvestSecrets(e.stateDir)
	e.assertExactlyOne("twins")
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("twins")...)...)
	e.assertNothingLeft()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the mlstack command once, for tests that signal a real
// process. The test build (tag mlstack_testhooks) takes the hidden
// --health-url and --tracking-uri that the shipped one refuses.
func binary(t *testing.T) string {
	t.Helper()
	if path := os.Getenv(binaryVar); path != "" {
		return path // the shards' parent built it (shard_test.go)
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mlstack-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mlstack")
		buildErr = buildBinary(binPath)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// buildBinary builds the test build of mlstack at path.
func buildBinary(path string) error {
	out, err := exec.Command("go", "build", "-tags", "mlstack_testhooks", "-o", path, ".").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// TestInterrupt sends SIGINT to a real mlstack process after each AWS call
// of up (and of down): it stops promptly with exit 130 and a hint, leaves
// whole local files, and the next up converges; down then leaves nothing.
func TestInterrupt(t *testing.T) {
	bin := binary(t)
	e := newEnv(t)
	flags := append([]string{"--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("sig")...)

	// How many calls does a clean up make? Interrupt after each of them.
	e.mlstack(append([]string{"up"}, flags...)...)
	total := len(e.rec.calls())
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("sig")...)...)
	if total < 10 {
		t.Fatalf("a clean up made only %d calls", total)
	}

	interrupted := map[string]int{}
	defer func() {
		// Guard against a vacuous pass: most signals must land mid-run.
		if interrupted["up"] == 0 || interrupted["down"] == 0 {
			t.Errorf("no run was actually interrupted: %v", interrupted)
		}
		t.Logf("runs stopped by SIGINT: %v", interrupted)
	}()
	for _, cmd := range []string{"up", "down"} {
		for n := 1; n <= total; n += 2 {
			e.rec.reset()
			if cmd == "down" { // something to delete
				e.ok(append([]string{"up"}, flags...)...)
				e.rec.reset()
			}
			args := append([]string{cmd}, flags...)
			if cmd == "down" {
				args = append([]string{cmd, "--yes"}, e.stackFlags("sig")...)
			}
			run := e.runInterrupted(bin, args, n, "interrupted "+cmd)
			sentAt := run.sent
			code := run.code
			if code == 130 {
				interrupted[cmd]++
			}
			if !sentAt.IsZero() && time.Since(sentAt) > 10*time.Second {
				t.Errorf("%s interrupted after call %d took %s to stop", cmd, n, time.Since(sentAt))
			}
			if code != 0 && code != 130 {
				t.Errorf("%s interrupted after call %d: exit %d: %s", cmd, n, code, run.stderr)
			}
			if code == 130 && !strings.Contains(run.stderr, "again to finish") {
				t.Errorf("%s interrupted after call %d: no hint what to run next: %s", cmd, n, run.stderr)
			}
			checkWholeState(t, filepath.Join(e.stateDir, "sig"))

			// The next run finishes the job.
			if cmd == "up" {
				if res := e.mlstack(append([]string{"up"}, flags...)...); res.code != 0 {
					t.Fatalf("up after interrupt at call %d: exit %d: %s", n, res.code, res.stderr)
				}
				e.assertExactlyOne("sig")
			}
			if res := e.mlstack(append([]string{"down", "--yes"}, e.stackFlags("sig")...)...); res.code != 0 {
				t.Fatalf("down after interrupted %s at call %d: exit %d: %s", cmd, n, res.code, res.stderr)
			}
			e.assertNothingLeft()
		}
	}
}

// sigintRun is one run of the built mlstack that got SIGINT at its nth AWS
// call, if it made that many (sent is zero when it did not).
type sigintRun struct {
	code           int
	stdout, stderr string
	sent           time.Time
}

// runInterrupted runs bin with args and sends it SIGINT when the recorder
// sees its nth call; its outputs are scanned for secrets under label.
func (e *env) runInterrupted(bin string, args []string, n int, label string) sigintRun {
	e.t.Helper()
	proc := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	proc.Stdout, proc.Stderr = &stdout, &stderr
	var (
		once    sync.Once
		mu      sync.Mutex
		sent    time.Time
		started = make(chan struct{})
	)
	e.rec.setFaults(&faults{model: awsmodel.NewFaults(1),
		onCall: func(i int) {
			if i == n {
				<-started // proc.Process is set
				once.Do(func() {
					mu.Lock()
					sent = time.Now()
					mu.Unlock()
					_ = proc.Process.Signal(syscall.SIGINT)
				})
			}
		}})
	if err := proc.Start(); err != nil {
		e.t.Fatal(err)
	}
	close(started)
	_ = proc.Wait()
	e.rec.setFaults(nil)
	harvestSecrets(e.stateDir)
	recordOutput(label+" (stdout)", stdout.String())
	recordOutput(label+" (stderr)", stderr.String())
	mu.Lock()
	defer mu.Unlock()
	return sigintRun{code: proc.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), sent: sent}
}

// checkWholeState: no temp files, and state.json (if any) parses.
func checkWholeState(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	must(t, err)
	for _, en := range entries {
		if strings.Contains(en.Name(), ".tmp") {
			t.Errorf("half-written file left: %s", en.Name())
		}
		if en.Name() == "state.json" {
			b, err := os.ReadFile(filepath.Join(dir, en.Name()))
			must(t, err)
			var v map[string]any
			if json.Unmarshal(b, &v) != nil {
				t.Errorf("state.json is not whole JSON after an interrupt")
			}
		}
	}
}

// TestExpiredCredentials: STS's answer for expired or unknown keys is a
// usage error in one line, before anything else is called.
func TestExpiredCredentials(t *testing.T) {
	for _, code := range []string{"ExpiredToken", "InvalidClientTokenId"} {
		t.Run(code, func(t *testing.T) {
			e := newEnv(t)
			e.rec.setFaults(newFaults(9).failFirst("GetCallerIdentity", 100, code, "The security token included in the request is expired"))
			res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("exp")...)...)
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if res.code != 2 || len(lines) != 1 || !strings.Contains(res.stderr, code) {
				t.Fatalf("exit %d, stderr %q: want one usage line naming %s", res.code, res.stderr, code)
			}
			for _, c := range e.rec.calls() {
				if c.Action != "GetCallerIdentity" {
					t.Errorf("called %s with bad credentials", c.Action)
				}
			}
			e.assertNothingLeft()
		})
	}
}
