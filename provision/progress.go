package provision

import (
	"fmt"
	"io"
	"sync"
)

// progress writes human progress lines to stderr. Concurrent steps share it.
// It must never be given secret values.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) printf(prefix, format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, prefix+format+"\n", a...)
}

func (p *progress) step(format string, a ...any) { p.printf("• ", format, a...) }
func (p *progress) info(format string, a ...any) { p.printf("  ", format, a...) }
func (p *progress) warn(format string, a ...any) { p.printf("! ", format, a...) }
