package cloud

import "fmt"

// Log receives a resource's progress lines for stderr; it must never be
// given secret values. The lifecycles' progress writer implements it, and
// it is server.Logger's twin: Waiting is the same type in both.
type Log interface {
	Step(format string, a ...any)
	Info(format string, a ...any)
	Warn(format string, a ...any)
	// Wait says what is waited for; on a terminal a live line counts the
	// seconds until Done or Stop.
	Wait(format string, a ...any) Waiting
}

// Waiting is a wait a Log shows: Done with a result, or Stop.
type Waiting = interface {
	Done(format string, a ...any)
	Stop()
}

// PluralWord is "instance" for one, "instances" for more.
func PluralWord(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// Plural is "1 run", "2 runs".
func Plural(n int, noun string) string {
	return fmt.Sprintf("%d %s", n, PluralWord(n, noun))
}
