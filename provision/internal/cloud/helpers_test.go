package cloud_test

import (
	"fmt"
	"io"
	"testing"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// textLog is a cloud.Log that writes each line, marked as the lifecycles'
// progress marks it, to w.
type textLog struct{ w io.Writer }

func newProgress(w io.Writer) textLog { return textLog{w} }

func (l textLog) line(marker, format string, a ...any) {
	fmt.Fprintf(l.w, marker+format+"\n", a...)
}
func (l textLog) Step(format string, a ...any) { l.line("• ", format, a...) }
func (l textLog) Info(format string, a ...any) { l.line("  ", format, a...) }
func (l textLog) Warn(format string, a ...any) { l.line("! ", format, a...) }
func (l textLog) Wait(format string, a ...any) interface {
	Done(format string, a ...any)
	Stop()
} {
	l.line("… ", format, a...)
	return textWait(l)
}

type textWait textLog

func (w textWait) Done(format string, a ...any) { textLog(w).line("  ", format, a...) }
func (w textWait) Stop()                        {}
