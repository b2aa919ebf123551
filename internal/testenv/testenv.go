// Package testenv is what mlstack's tests do when the machine lacks
// something a test needs: the moto emulator, the MLflow venv, sshd, a
// checker tool. In CI (CI set) that test fails. Elsewhere it is skipped and
// counted, and Run, called from the package's TestMain, turns a run with
// such skips into a failed one, with a banner saying what was not checked
// and how to run everything (scripts/test.sh). A skipped test checked
// nothing, so a run made of them must not print ok.
package testenv

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

var state struct {
	mu      sync.Mutex
	running bool           // Run is the package's TestMain
	skipped map[string]int // reason → tests skipped for it
}

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing ends t because the machine lacks something: reason says what,
// in words that are the same for every test that lacks it (skips are
// counted per reason). In CI t fails; elsewhere it is skipped, and Run
// fails the package run.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip; scripts/test.sh sets everything up)", reason)
	}
	state.mu.Lock()
	running := state.running
	if running {
		if state.skipped == nil {
			state.skipped = map[string]int{}
		}
		state.skipped[reason]++
	}
	state.mu.Unlock()
	if !running {
		t.Fatalf("%s; and this package's TestMain does not call testenv.Run, so the skip would go unnoticed", reason)
	}
	t.Skip(reason)
}

// Run runs the package's tests (m.Run) and returns the exit code, m.Run's
// or 1 when tests were skipped by Missing outside CI. Call it as
// os.Exit(testenv.Run(m)): a TestMain that just returns exits with m.Run's.
// The banner goes to stderr, which go test shows for a failed package.
func Run(m *testing.M) int {
	state.mu.Lock()
	state.running = true
	state.mu.Unlock()
	return finish(m.Run(), os.Stderr)
}

// finish is Run after the tests: the code, and the banner on w; in a
// shard's child (SkipDirVar set), the skips go to the parent instead.
func finish(code int, w io.Writer) int {
	state.mu.Lock()
	defer state.mu.Unlock()
	if len(state.skipped) == 0 {
		return code
	}
	if dir := os.Getenv(SkipDirVar); dir != "" {
		return record(code, dir, state.skipped, w)
	}
	banner(w, state.skipped)
	if code == 0 {
		code = 1
	}
	return code
}

func banner(w io.Writer, skipped map[string]int) {
	var reasons []string
	total := 0
	for r, n := range skipped {
		reasons = append(reasons, r)
		total += n
	}
	sort.Strings(reasons)
	rule := strings.Repeat("=", 78)
	fmt.Fprintf(w, "\n%s\nNOT CHECKED: %d test(s) were skipped, so this run FAILS instead of printing ok.\n", rule, total)
	for _, r := range reasons {
		fmt.Fprintf(w, "  %4d skipped: %s\n", skipped[r], r)
	}
	fmt.Fprintf(w, "A skipped test checked nothing. Run the real tests, with the moto emulator, the\n"+
		"MLflow venv and the tools CI installs (see README.md, \"Run the tests\"):\n"+
		"    scripts/test.sh                     everything, as CI does\n"+
		"    scripts/test.sh -run TestName -v    one test, against a private moto\n"+
		"In CI (CI set) nothing is skipped: a missing piece fails the test itself.\n%s\n", rule)
}
