package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/sshdtest"
)

func TestLogCommands(t *testing.T) {
	b, j := LogOptions{}.commands(0)
	if !strings.Contains(b, "cat /var/log/cloud-init-output.log") || !strings.Contains(j, "journalctl -u mlflow --no-pager") {
		t.Errorf("default commands: %q, %q", b, j)
	}
	for _, c := range []string{b, j} {
		if !strings.Contains(c, "sudo -n") {
			t.Errorf("%q does not use sudo for the ubuntu user: the log and the journal need root or adm", c)
		}
	}
	b, j = LogOptions{Follow: true}.commands(200)
	if !strings.Contains(b, "tail -n 200 -F /var/log/cloud-init-output.log") || !strings.Contains(j, "-n 200 -f") {
		t.Errorf("follow commands: %q, %q", b, j)
	}
	b, _ = LogOptions{}.commands(25)
	if !strings.Contains(b, "tail -n 25 /var/log/cloud-init-output.log") {
		t.Errorf("tail command: %q", b)
	}
	b, j = LogOptions{BootstrapLog: "/tmp/it's here.log", JournalCommand: "cat /j"}.commands(0)
	if !strings.Contains(b, `cat '/tmp/it'\''s here.log'`) || j != "cat /j" {
		t.Errorf("overrides: %q, %q", b, j)
	}
}

// logFixture is a fixture whose sshd serves a fake bootstrap log and journal.
func logFixture(t *testing.T) (*sshFixture, *sshdtest.Server, LogOptions, string) {
	f := newSSHFixture(t)
	srv := f.server(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "cloud-init-output.log")
	var lines []string
	for i := 1; i <= 40; i++ {
		lines = append(lines, "bootstrap line "+string(rune('A'+i%26))+" "+strings.Repeat("x", i%3))
	}
	lines = append(lines, "Cloud-init v. 24.1 finished")
	if err := os.WriteFile(logPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, "journal")
	if err := os.WriteFile(journal, []byte("mlflow[812]: Listening at: http://0.0.0.0:5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, srv, LogOptions{BootstrapLog: logPath, JournalCommand: "cat " + journal}, logPath
}

// TestLogsOverOpenSSH: logs reads the bootstrap log and the journal through
// a real sshd, under headers.
func TestLogsOverOpenSSH(t *testing.T) {
	f, srv, o, logPath := logFixture(t)
	var out, errb bytes.Buffer
	if err := printLogs(t, f, srv, context.Background(), o, &out, &errb); err != nil {
		t.Fatalf("logs: %v\n%s", err, errb.String())
	}
	want, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "==> "+logPath+" (bootstrap) <==\n"+string(want)) {
		t.Errorf("bootstrap log not printed whole under its header:\n%s", got)
	}
	if !strings.Contains(got, "==> journalctl -u mlflow (tracking server) <==\nmlflow[812]: Listening at") {
		t.Errorf("journal not printed under its header:\n%s", got)
	}
	if strings.Contains(got+errb.String(), "PRIVATE KEY") {
		t.Error("a private key was printed")
	}
}

// TestLogsFollowOverOpenSSH: --follow prints new lines of both sources,
// each line whole and labelled, and ends cleanly on cancel.
func TestLogsFollowOverOpenSSH(t *testing.T) {
	f, srv, o, logPath := logFixture(t)
	o.Follow = true
	o.JournalCommand = "echo 'mlflow started'; exec sleep 4242"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &sshdtest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- printLogs(t, f, srv, ctx, o, out, io.Discard) }()

	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the followed output:\n%s", s, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("cloud-init | Cloud-init v. 24.1 finished\n")
	waitFor("mlflow     | mlflow started\n")
	fh, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("a line written later\n"); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor("cloud-init | a line written later\n")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v, want nil on cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after cancel")
	}
	// Nothing keeps running on the server: no sleep 4242, no tail -F.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processes("sleep\x004242", "-F\x00"+logPath)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote commands still run after follow ended: %q", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, l := range strings.SplitAfter(out.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "cloud-init | ") && !strings.HasPrefix(l, "mlflow     | ") {
			t.Errorf("unlabelled or broken line %q", l)
		}
	}
}

func TestBootstrapTailOverOpenSSH(t *testing.T) {
	f, srv, o, logPath := logFixture(t)
	client, err := Dial(context.Background(), f.host, f.remote(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	lines, source, err := BootstrapTail(context.Background(), client, o, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Split(strings.TrimSpace(string(want)), "\n")
	if strings.Join(lines, "\n") != strings.Join(all[len(all)-3:], "\n") {
		t.Errorf("last 3 lines = %q", lines)
	}
	if source != logPath+" over SSH" {
		t.Errorf("source %q", source)
	}
	o.BootstrapLog = filepath.Join(t.TempDir(), "missing.log")
	if _, _, err := BootstrapTail(context.Background(), client, o, 3); err == nil || !strings.Contains(err.Error(), "missing.log over SSH") {
		t.Errorf("a missing log: %v", err)
	}
}

// printLogs dials the fixture's sshd and prints the logs.
func printLogs(t *testing.T, f *sshFixture, srv *sshdtest.Server, ctx context.Context, o LogOptions, stdout, stderr io.Writer) error {
	t.Helper()
	client, err := Dial(ctx, f.host, f.remote(srv))
	if err != nil {
		return err
	}
	defer client.Close()
	return PrintLogs(ctx, client, o, stdout, stderr)
}

// fakeConsole answers with each text in turn, then the last.
type fakeConsole struct {
	mu    sync.Mutex
	texts []string
	calls int
}

func (f *fakeConsole) read(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.calls, len(f.texts)-1)
	f.calls++
	return f.texts[i], nil
}

func TestConsoleLogs(t *testing.T) {
	var out, log bytes.Buffer
	api := &fakeConsole{texts: []string{"[    0.000000] Linux version 6.8\nCloud-init v. 24.1 running\n"}}
	if err := PrintConsole(context.Background(), api.read, false, &out, textLog{&log}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "[    0.000000] Linux version 6.8\nCloud-init v. 24.1 running\n" {
		t.Errorf("decoded console output %q", out.String())
	}

	out.Reset()
	api = &fakeConsole{texts: []string{""}}
	if err := PrintConsole(context.Background(), api.read, false, &out, textLog{&log}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || !strings.Contains(log.String(), "no console output yet") {
		t.Errorf("empty console: out %q, log %q", out.String(), log.String())
	}
}

func TestConsoleLogsFollow(t *testing.T) {
	old := consolePoll
	consolePoll = 5 * time.Millisecond
	defer func() { consolePoll = old }()
	api := &fakeConsole{texts: []string{
		"boot 1\nboot 2\n",
		"boot 1\nboot 2\nboot 3\n",
		"boot 2\nboot 3\nboot 4\n", // the 64 KiB window moved
	}}
	ctx, cancel := context.WithCancel(context.Background())
	out := &sshdtest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- PrintConsole(ctx, api.read, true, out, nopLog{}) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "boot 4") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if got := out.String(); got != "boot 1\nboot 2\nboot 3\nboot 4\n" {
		t.Errorf("followed console output %q, want each line once", got)
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		text string
		n    int
		want []string
	}{
		{"", 3, nil},
		{"a\nb\nc\nd\n", 2, []string{"c", "d"}},
		{"a\nb", 5, []string{"a", "b"}},
	} {
		got := LastLines(tc.text, tc.n)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("LastLines(%q, %d) = %q, want %q", tc.text, tc.n, got, tc.want)
		}
	}
}

func TestPrefixWriterKeepsLinesWhole(t *testing.T) {
	var b bytes.Buffer
	lw := &lineWriter{w: &b}
	a, c := lw.prefixed("a | "), lw.prefixed("c | ")
	io.WriteString(a, "one ")
	io.WriteString(c, "two\nthr")
	io.WriteString(a, "half\n")
	io.WriteString(c, "ee\n")
	if b.String() != "c | two\na | one half\nc | three\n" {
		t.Errorf("interleaved output %q", b.String())
	}
}

// processes lists the command lines (NUL-separated words) of local
// processes containing any of the given substrings.
func processes(subs ...string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range subs {
			if strings.Contains(string(b), s) {
				out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	return out
}

// textLog is a Logger that writes lines to a buffer.
type textLog struct{ b *bytes.Buffer }

func (l textLog) Step(f string, a ...any) { fmt.Fprintf(l.b, "• "+f+"\n", a...) }
func (l textLog) Info(f string, a ...any) { fmt.Fprintf(l.b, "  "+f+"\n", a...) }
func (l textLog) Warn(f string, a ...any) { fmt.Fprintf(l.b, "! "+f+"\n", a...) }
func (l textLog) Wait(f string, a ...any) Waiting {
	l.Step(f, a...)
	return l
}
func (l textLog) Done(f string, a ...any) { l.Step(f, a...) }
func (l textLog) Stop()                   {}
