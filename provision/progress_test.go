package provision

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

// syncBuffer is a buffer the live line's ticker and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressWaits: on a terminal a wait is a live line, redrawn in place
// with the seconds counting and blanked before other lines; elsewhere it
// is a line when it starts and one when it ends, never redrawn, no colour.
func TestProgressWaits(t *testing.T) {
	t.Parallel()
	var tty syncBuffer
	p := Streams{Log: &tty, LogTerminal: true, Color: true}.progress()
	w := p.Wait("waiting for instance %s to run", "i-1")
	time.Sleep(1500 * time.Millisecond) // the ticker redraws once a second
	p.Info("a detail")
	w.Done("instance %s is running", "i-1")
	out := tty.String()
	for _, want := range []string{colorFaint + "… waiting for instance i-1 to run (0s)", "… waiting for instance i-1 to run (1s)",
		"\r", "  a detail\n", colorStep + "• " + colorReset + "instance i-1 is running (after "} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal lacks %q:\n%q", want, out)
		}
	}
	// Every line starts at column 0: the live line is blanked first.
	if !strings.Contains(out, "\r"+strings.Repeat(" ", len([]rune("… waiting for instance i-1 to run (1s)")))+"\r  a detail") {
		t.Errorf("a line was written over the live line:\n%q", out)
	}
	before := len(out)
	time.Sleep(1200 * time.Millisecond)
	if len(tty.String()) != before {
		t.Errorf("the live line was redrawn after the wait ended:\n%q", tty.String()[before:])
	}

	var plain bytes.Buffer
	q := Streams{Log: &plain, Color: true}.progress() // colour without a terminal: none
	w = q.Wait("waiting for instance %s to run", "i-1")
	w.Done("instance %s is running", "i-1")
	w.Done("twice")
	q.labelled("demo").Wait("waiting for the tracking server").Stop()
	if got := plain.String(); got != "• waiting for instance i-1 to run\n• instance i-1 is running (after 0s)\n• [demo] waiting for the tracking server\n" {
		t.Errorf("plain progress:\n%q", got)
	}
}

// TestProgressConcurrentWaits: the live line shows the oldest wait and how
// many more run; each ends with its own line.
func TestProgressConcurrentWaits(t *testing.T) {
	t.Parallel()
	var tty syncBuffer
	p := Streams{Log: &tty, LogTerminal: true}.progress()
	a := p.labelled("a").Wait("terminating")
	b := p.labelled("b").Wait("terminating")
	a.Done("terminated")
	b.Stop()
	out := tty.String()
	if !strings.Contains(out, "… [a] terminating (0s) and 1 more") || !strings.Contains(out, "• [a] terminated (after 0s)\n") || strings.Contains(out, "\x1b[") {
		t.Errorf("terminal:\n%q", out)
	}
}

func TestWording(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{cloud.Plural(1, "stack"), "1 stack"}, {cloud.Plural(0, "run"), "0 runs"}, {cloud.Plural(2, "resource"), "2 resources"},
		{cloud.PluralWord(1, "instance"), "instance"}, {cloud.PluralWord(3, "instance"), "instances"},
		{humanBytes(0), "0 bytes"}, {humanBytes(1), "1 byte"}, {humanBytes(5500), "5.5 kB"}, {humanBytes(1_250_000_000), "1.2 GB"},
		{cloud.FormatDuration(48 * time.Hour), "2d"}, {cloud.FormatDuration(90 * time.Minute), "1h30m"}, {cloud.FormatDuration(15 * time.Minute), "15m"},
		{cloud.FormatDuration(2 * time.Hour), "2h"}, {cloud.FormatDuration(90 * time.Second), "1m30s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
