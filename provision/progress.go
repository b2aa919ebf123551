package provision

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/server"
)

// progress writes human progress lines to stderr. Concurrent steps share it.
// It must never be given secret values. It is the server package's Logger.
//
// On a terminal every wait shows a live line that counts the seconds,
// redrawn in place; elsewhere (CI logs, pipes) a wait is one line when it
// starts and one when it ends, and nothing is redrawn.
type progress struct {
	*shared
	label string // "[stack] " when several stacks report at once
}

// shared is what labelled copies of a progress have in common.
type shared struct {
	mu    sync.Mutex
	w     io.Writer
	term  bool // w is a terminal: live lines
	color bool
	waits []*waitLine // live, oldest first
	shown int         // width of the live line on the screen, 0 when none
	tick  *time.Ticker
	stop  chan struct{}
}

// newProgress writes plain lines to w.
func newProgress(w io.Writer) *progress { return &progress{shared: &shared{w: w}} }

// progress is the writer for a command's Log stream.
func (s Streams) progress() *progress {
	p := newProgress(s.Log)
	p.term, p.color = s.LogTerminal, s.LogTerminal && s.Color
	return p
}

// labelled returns a progress that prefixes lines with the stack's name and
// shares this one's lock and live line, so concurrent lines never interleave.
func (p *progress) labelled(stack string) *progress {
	return &progress{shared: p.shared, label: "[" + stack + "] "}
}

// ANSI colours of the line markers.
const (
	colorStep  = "\x1b[36m" // cyan
	colorWarn  = "\x1b[33m" // yellow
	colorFaint = "\x1b[2m"
	colorReset = "\x1b[0m"
)

func (p *progress) printf(marker, color, format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	if p.color && color != "" {
		marker = color + marker + colorReset
	}
	fmt.Fprintf(p.w, marker+p.label+format+"\n", a...)
	p.drawLive()
}

// Step is something mlstack does; Info a detail of it; Warn what needs attention.
func (p *progress) Step(format string, a ...any) { p.printf("• ", colorStep, format, a...) }
func (p *progress) Info(format string, a ...any) { p.printf("  ", "", format, a...) }
func (p *progress) Warn(format string, a ...any) { p.printf("! ", colorWarn, format, a...) }

// waitLine is one wait in progress.
type waitLine struct {
	p     *progress
	what  string
	start time.Time
	once  sync.Once
}

// Wait says what mlstack waits for; on a terminal a live line counts the
// seconds until Done or Stop.
func (p *progress) Wait(format string, a ...any) server.Waiting {
	w := &waitLine{p: p, what: p.label + fmt.Sprintf(format, a...), start: time.Now()}
	if !p.term {
		p.Step("%s", fmt.Sprintf(format, a...))
		return w
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	p.waits = append(p.waits, w)
	if p.tick == nil {
		p.tick, p.stop = time.NewTicker(time.Second), make(chan struct{})
		go p.redraw(p.tick, p.stop)
	}
	p.drawLive()
	return w
}

// Done ends the wait with what came of it, and how long it took.
func (w *waitLine) Done(format string, a ...any) {
	w.once.Do(func() {
		w.end()
		w.p.Step("%s (after %s)", fmt.Sprintf(format, a...), elapsed(w.start))
	})
}

// Stop ends the wait without a line: the caller reports why.
func (w *waitLine) Stop() { w.once.Do(w.end) }

func (w *waitLine) end() {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	for i, x := range p.waits {
		if x == w {
			p.waits = append(p.waits[:i], p.waits[i+1:]...)
			break
		}
	}
	if len(p.waits) == 0 && p.tick != nil {
		p.tick.Stop()
		close(p.stop)
		p.tick, p.stop = nil, nil
	}
	p.drawLive()
}

// redraw refreshes the live line every tick until stopped.
func (p *progress) redraw(t *time.Ticker, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.clearLive()
			p.drawLive()
			p.mu.Unlock()
		}
	}
}

// drawLive shows the oldest wait with its elapsed time (and how many more
// run at once); the caller holds mu.
func (p *progress) drawLive() {
	if len(p.waits) == 0 {
		return
	}
	w := p.waits[0]
	line := fmt.Sprintf("… %s (%s)", w.what, elapsed(w.start))
	if n := len(p.waits) - 1; n > 0 {
		line += fmt.Sprintf(" and %d more", n)
	}
	p.shown = len([]rune(line))
	if p.color {
		line = colorFaint + line + colorReset
	}
	fmt.Fprint(p.w, line)
}

// clearLive blanks the live line, so that the next text starts at column
// 0 (spaces rather than an erase sequence: any terminal knows them).
func (p *progress) clearLive() {
	if p.shown > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.shown)+"\r")
		p.shown = 0
	}
}

func elapsed(since time.Time) string {
	return time.Since(since).Round(time.Second).String()
}

// writeJSON is the --output json form of a report.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanBytes is a size as people read it: 0 bytes, 12.3 kB, 1.2 GB.
func humanBytes(n int64) string {
	if n < 1000 {
		return cloud.Plural(int(n), "byte")
	}
	v, unit := float64(n), ""
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		v, unit = v/1000, u
		if v < 1000 {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
