//go:build boottest

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/proctest"
)

// proc is a process the test started, leader of a process group of its own.
type proc struct {
	cmd    *exec.Cmd
	exited <-chan struct{}
}

// startProc starts cmd in a process group of its own; when owner ends, the
// group is stopped (SIGTERM, SIGKILL after 10 s) if it still runs. owner is
// the test that must outlive the process: a phase for a command, the whole
// test for a server.
func (b *bootTest) startProc(t, owner testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	p, err := startGroup(owner, cmd, 10*time.Second)
	if err != nil {
		t.Fatalf("starting %s: %v", filepath.Base(cmd.Path), err)
	}
	return p
}

// startGroup starts cmd as the leader of a new process group, stopped
// when owner ends: SIGTERM, then SIGKILL after grace.
func startGroup(owner testing.TB, cmd *exec.Cmd, grace time.Duration) (*proc, error) {
	exited, err := proctest.Start(owner, cmd, grace)
	if err != nil {
		return nil, err
	}
	return &proc{cmd: cmd, exited: exited}, nil
}

// stop ends p's process group now, grace before SIGKILL.
func (p *proc) stop(t testing.TB, grace time.Duration) {
	proctest.Stop(t, p.cmd, p.exited, grace)
}

// running reports whether p's leader has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// wait waits up to timeout for p to exit and returns its error (a
// non-zero exit included); on timeout the owner's cleanup stops it.
func (b *bootTest) wait(t testing.TB, p *proc, timeout time.Duration) error {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return errors.New(st.String())
	}
	return nil
}

// command is name with args, run in the repository.
func (b *bootTest) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = b.repo
	return cmd
}

// run runs cmd to its end, owned by t, and returns its stdout; a failure
// fails t with the (masked) output.
func (b *bootTest) run(t *testing.T, timeout time.Duration, cmd *exec.Cmd) string {
	t.Helper()
	return b.runIn(t, t, timeout, cmd)
}

func (b *bootTest) runIn(t, owner testing.TB, timeout time.Duration, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := b.wait(t, b.startProc(t, owner, cmd), timeout); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b.mask(stdout.String()+stderr.String()))
	}
	return stdout.String()
}

// cmdError is a failed command with its masked output.
type cmdError struct {
	err error
	out string
}

func (e *cmdError) Error() string { return e.err.Error() + "\n" + e.out }

// The secrets of the run live in one file, one a line (rds.py appends the
// database passwords it sets): mask replaces them in whatever the test
// shows, and the secrets phase scans for them.
func (b *bootTest) secretFile() string { return filepath.Join(b.work, "secrets") }

func (b *bootTest) writeSecretFile(t *testing.T) {
	if err := os.WriteFile(b.secretFile(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// addSecrets records secrets (empty ones are ignored).
func (b *bootTest) addSecrets(t testing.TB, secrets ...string) {
	f, err := os.OpenFile(b.secretFile(), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range secrets {
		if s != "" {
			fmt.Fprintln(f, s)
		}
	}
}

// secrets are the recorded secrets.
func (b *bootTest) secrets() []string {
	data, _ := os.ReadFile(b.secretFile())
	var out []string
	for _, s := range strings.Split(string(data), "\n") {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	return out
}

// mask replaces every recorded secret in s by ***, longest first, so that
// a secret that holds another is masked whole.
func (b *bootTest) mask(s string) string {
	secrets := b.secrets()
	slices.SortFunc(secrets, func(x, y string) int { return len(y) - len(x) })
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// tail is the last n lines of a file, masked.
func (b *bootTest) tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return fmt.Sprintf("--- %s (last %d lines) ---\n%s", filepath.Base(path), n, b.mask(strings.Join(lines, "\n")))
}
