package testenv

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Not Run: these tests drive Missing and finish themselves.
	m.Run()
}

// fakeTB records how Missing ends a test; Fatalf and Skip stop the
// caller as the real ones do (runtime.Goexit), here with a panic.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

type stopped struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.fatal = fmt.Sprintf(format, a...)
	panic(stopped{})
}
func (f *fakeTB) Skip(a ...any) {
	f.skip = fmt.Sprint(a...)
	panic(stopped{})
}

func reset(running bool) {
	state.mu.Lock()
	state.running, state.skipped = running, nil
	state.mu.Unlock()
}

func callMissing(reason string) (f *fakeTB) {
	f = &fakeTB{}
	defer func() {
		if r := recover(); r != nil && r != (stopped{}) {
			panic(r)
		}
	}()
	Missing(f, reason)
	return f
}

func TestMissingOutsideCISkipsAndRunFails(t *testing.T) {
	t.Setenv("CI", "")
	reset(true)
	for range 2 {
		if f := callMissing("no moto server"); f.skip != "no moto server" || f.fatal != "" {
			t.Fatalf("outside CI: skip %q, fatal %q; want a skip", f.skip, f.fatal)
		}
	}
	callMissing("no sshd")
	var banner bytes.Buffer
	if code := finish(0, &banner); code != 1 {
		t.Errorf("a run with skips exits %d, want 1", code)
	}
	for _, want := range []string{"NOT CHECKED: 3 test(s) were skipped", "2 skipped: no moto server", "1 skipped: no sshd", "scripts/test.sh"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	if code := finish(3, &bytes.Buffer{}); code != 3 {
		t.Errorf("a failed run keeps its own code: got %d, want 3", code)
	}
}

func TestMissingInCIFails(t *testing.T) {
	t.Setenv("CI", "true")
	reset(true)
	if f := callMissing("no moto server"); f.fatal == "" || f.skip != "" {
		t.Fatalf("in CI: skip %q, fatal %q; want a failure", f.skip, f.fatal)
	}
	var banner bytes.Buffer
	if code := finish(0, &banner); code != 0 || banner.Len() != 0 {
		t.Errorf("in CI the test itself failed; nothing is counted: code %d, banner %q", code, banner.String())
	}
}

func TestMissingWithoutRunFails(t *testing.T) {
	t.Setenv("CI", "")
	reset(false)
	if f := callMissing("no sshd"); !strings.Contains(f.fatal, "testenv.Run") || f.skip != "" {
		t.Fatalf("without Run in TestMain a skip would go unnoticed, so it must fail: fatal %q, skip %q", f.fatal, f.skip)
	}
}

func TestNothingSkippedKeepsCode(t *testing.T) {
	reset(true)
	var banner bytes.Buffer
	if code := finish(0, &banner); code != 0 || banner.Len() != 0 {
		t.Errorf("no skips: code %d, banner %q", code, banner.String())
	}
}

// TestShardSkipsCollected: children of a sharded run leave their skips
// to the parent, which adds them up in one banner and fails the run; a
// child's own code is kept, and no skips leave the parent's code alone.
func TestShardSkipsCollected(t *testing.T) {
	t.Setenv("CI", "")
	dir := t.TempDir()
	t.Setenv(SkipDirVar, dir)
	for _, reasons := range [][]string{{"no sshd", "no moto server"}, {"no sshd"}, nil} {
		reset(true)
		for _, r := range reasons {
			callMissing(r)
		}
		var out bytes.Buffer
		if code := finish(0, &out); code != 0 || out.Len() != 0 {
			t.Fatalf("a child with skips %v: code %d, output %q; want 0 and nothing (the parent reports)", reasons, code, out.String())
		}
	}
	reset(true)
	callMissing("no sshd")
	if code := finish(2, &bytes.Buffer{}); code != 2 {
		t.Errorf("a failed child keeps its code: got %d, want 2", code)
	}
	var banner bytes.Buffer
	if code := Collected(0, dir, &banner); code != 1 {
		t.Errorf("a parent whose children skipped exits %d, want 1", code)
	}
	for _, want := range []string{"NOT CHECKED: 4 test(s) were skipped", "3 skipped: no sshd", "1 skipped: no moto server"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	var none bytes.Buffer
	if code := Collected(3, t.TempDir(), &none); code != 3 || none.Len() != 0 {
		t.Errorf("no skips: code %d, banner %q; want 3 and none", code, none.String())
	}
	reset(false)
}
