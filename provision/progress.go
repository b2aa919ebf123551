package provision

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// progress writes human progress lines to stderr. Concurrent steps share it.
// It must never be given secret values. It is the server package's Logger.
type progress struct {
	mu    *sync.Mutex
	w     io.Writer
	label string // "[stack] " when several stacks report at once
}

func newProgress(w io.Writer) *progress { return &progress{mu: &sync.Mutex{}, w: w} }

// labelled returns a progress that prefixes lines with the stack's name and
// shares this one's lock, so concurrent lines never interleave.
func (p *progress) labelled(stack string) *progress {
	return &progress{mu: p.mu, w: p.w, label: "[" + stack + "] "}
}

func (p *progress) printf(prefix, format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, prefix+p.label+format+"\n", a...)
}

// Step is something mlstack does; Info a detail of it; Warn what needs attention.
func (p *progress) Step(format string, a ...any) { p.printf("• ", format, a...) }
func (p *progress) Info(format string, a ...any) { p.printf("  ", format, a...) }
func (p *progress) Warn(format string, a ...any) { p.printf("! ", format, a...) }

// writeJSON is the --output json form of a report.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
