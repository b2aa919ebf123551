package cloud

// What a command reaches AWS through, and how long it pauses between
// attempts, are dependencies passed in rather than package variables that
// tests swap: a test that swapped them could not run beside another.
// They travel in the context, under a key only this package can set, as
// the test hooks do (options.go's hooksOf): a program that imports
// provision cannot hand a command another AWS, and production, which sets
// nothing, gets connectAWS and productionWaits. The waits sit below the
// narrow SDK interfaces (retryOn, poll, the RDS and stop waits), where no
// session is at hand but the context always is.

import (
	"context"
	"time"
)

// Waits are mlstack's pauses between attempts.
type Waits struct {
	// RetryFirst and retryMax bound retryOn's back-off.
	RetryFirst, RetryMax time.Duration
	// PollFirst and pollMax bound the instance waits (running, gone,
	// stopped) and the wait for the server's published keys.
	PollFirst, PollMax time.Duration
	// DBPollFirst and dbPollMax: up and down ask RDS how a database is after
	// a second, then less and less often, at last every dbPollMax.
	DBPollFirst, DBPollMax time.Duration
	// NameBusy bounds how long up waits for S3 to free a bucket name that
	// a deleted bucket still holds (OperationAborted).
	NameBusy time.Duration
}

// ProductionWaits are the pauses mlstack makes against AWS.
func ProductionWaits() Waits {
	return Waits{
		RetryFirst: time.Second, RetryMax: 8 * time.Second,
		PollFirst: time.Second, PollMax: 10 * time.Second,
		DBPollFirst: time.Second, DBPollMax: 15 * time.Second,
		NameBusy: 2 * time.Minute,
	}
}

// Deps are a command's dependencies; the zero value is production's.
type Deps struct {
	// Connect opens the session; nil: connectAWS.
	Connect func(context.Context, AWS) (*Session, error)
	// Waits replace productionWaits when set.
	Waits *Waits
}

type depsKey struct{}

// WithDeps returns ctx carrying d (provision's own tests).
func WithDeps(ctx context.Context, d Deps) context.Context {
	return context.WithValue(ctx, depsKey{}, d)
}

// DepsOf is what ctx carries; nothing, in production.
func DepsOf(ctx context.Context) Deps {
	d, _ := ctx.Value(depsKey{}).(Deps)
	return d
}

// WaitsOf are the pauses for calls made under ctx.
func WaitsOf(ctx context.Context) Waits {
	if w := DepsOf(ctx).Waits; w != nil {
		return *w
	}
	return ProductionWaits()
}

// ConnectFor opens the session a command works with under ctx.
func ConnectFor(ctx context.Context, a AWS) (*Session, error) {
	if c := DepsOf(ctx).Connect; c != nil {
		return c(ctx, a)
	}
	return ConnectAWS(ctx, a)
}
