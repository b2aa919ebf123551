//go:build linux

package server

// `mlstack ssh` without a command on a terminal: a remote pty on the real
// OpenSSH, driven through a local pseudo-terminal as a user's terminal.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/term"

	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
)

// openPty opens a pseudo-terminal pair: what a test writes to master the
// program reads from the terminal slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testenv.Missing(t, "no pseudo-terminals (/dev/ptmx: "+err.Error()+")")
	}
	var n uint32
	if err := ioctl(m, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		m.Close()
		t.Fatalf("TIOCGPTN: %v", err)
	}
	var unlock int32
	if err := ioctl(m, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		m.Close()
		t.Fatalf("TIOCSPTLCK: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// setSize sets the terminal's window size, as a terminal emulator does
// when its window is resized.
func setSize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	ws := struct{ Row, Col, X, Y uint16 }{rows, cols, 0, 0}
	if err := ioctl(f, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		t.Fatalf("TIOCSWINSZ: %v", err)
	}
}

// waitFor waits until out holds a line matching re.
func waitFor(t *testing.T, out *sshdtest.SyncBuffer, re *regexp.Regexp, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !re.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s from the remote shell; it printed:\n%q", what, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInteractiveShellOnPty: on a terminal, Exec without a command gets a
// remote pty of the local size and TERM, follows a window resize, puts the
// local terminal in raw mode while the shell runs and back afterwards, and
// returns the shell's exit status.
func TestInteractiveShellOnPty(t *testing.T) {
	f := newSSHFixture(t)
	srv := f.server(t)
	master, slave := openPty(t)
	go func() { _, _ = io.Copy(io.Discard, master) }() // the local echo, if any
	setSize(t, slave, 31, 97)
	before, err := term.GetState(int(slave.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TERM", "vt220")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := Dial(ctx, f.host, f.remote(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	out, errb := &sshdtest.SyncBuffer{}, &sshdtest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Exec(ctx, client, nil, slave, out, errb) }()

	// The marks are printed by arithmetic so that the echo of the command
	// line does not match them.
	if _, err := master.WriteString("echo size=$((1+0)) $(stty size) term=$TERM\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, regexp.MustCompile(`size=1 31 97 term=vt220`), "first size and TERM")

	// Raw mode while the shell runs: no local echo, no line editing.
	if raw, err := term.GetState(int(slave.Fd())); err != nil || *raw == *before {
		t.Errorf("the local terminal is not in raw mode while the shell runs (%v)", err)
	}

	setSize(t, slave, 42, 133)
	// followWindowSize polls every 250 ms; ask until the remote size follows.
	re := regexp.MustCompile(`size=2 42 133`)
	deadline := time.Now().Add(15 * time.Second)
	for !re.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the remote size did not follow the resize; the shell printed:\n%q", out.String())
		}
		if _, err := master.WriteString("echo size=$((1+1)) $(stty size)\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}

	if _, err := master.WriteString("exit 7\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the shell did not end; it printed:\n%q", out.String())
	}
	var exit *RemoteExitError
	if !errors.As(err, &exit) || exit.Status != 7 {
		t.Errorf("Exec = %v, want the shell's exit status 7", err)
	}
	after, err := term.GetState(int(slave.Fd()))
	if err != nil || *after != *before {
		t.Errorf("the local terminal was not restored after the shell (%v)", err)
	}
	if strings.Contains(out.String()+errb.String(), "PTY allocation request failed") {
		t.Errorf("no remote pty:\n%s", errb)
	}
}
