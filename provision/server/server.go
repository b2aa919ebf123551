// Package server operates a running mlstack tracking server from this
// machine, whatever created it: waiting for /health, the MLflow REST calls
// (the smoke test of `mlstack check`, changing a password), and SSH with a
// pinned host key (commands, a shell, the bootstrap log and the journal).
// It knows nothing of AWS: package provision finds the instance and hands
// over its address, its files and a reader of its console output.
package server

// Logger receives progress lines for stderr; it must never be given secret
// values. Package provision's progress writer implements it.
type Logger interface {
	Step(format string, a ...any)
	Info(format string, a ...any)
	Warn(format string, a ...any)
	// Wait says what is waited for; on a terminal a live line counts the
	// seconds until Done or Stop.
	Wait(format string, a ...any) Waiting
}

// Waiting is a wait a Logger shows. An alias of an interface literal, so
// that a Logger's Wait also satisfies other packages' twins of Logger.
type Waiting = interface {
	Done(format string, a ...any) // the wait ended with this result
	Stop()                        // the wait ended; the caller says why
}
