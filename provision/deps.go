package provision

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

// waits are mlstack's pauses between attempts.
type waits struct {
	// retryFirst and retryMax bound retryOn's back-off.
	retryFirst, retryMax time.Duration
	// pollFirst and pollMax bound the instance waits (running, gone,
	// stopped) and the wait for the server's published keys.
	pollFirst, pollMax time.Duration
	// dbPollFirst and dbPollMax: up and down ask RDS how a database is after
	// a second, then less and less often, at last every dbPollMax.
	dbPollFirst, dbPollMax time.Duration
	// nameBusy bounds how long up waits for S3 to free a bucket name that
	// a deleted bucket still holds (OperationAborted).
	nameBusy time.Duration
}

// productionWaits are the pauses mlstack makes against AWS.
func productionWaits() waits {
	return waits{
		retryFirst: time.Second, retryMax: 8 * time.Second,
		pollFirst: time.Second, pollMax: 10 * time.Second,
		dbPollFirst: time.Second, dbPollMax: 15 * time.Second,
		nameBusy: 2 * time.Minute,
	}
}

// deps are a command's dependencies; the zero value is production's.
type deps struct {
	// connect opens the session; nil: connectAWS.
	connect func(context.Context, AWS) (*session, error)
	// waits replace productionWaits when set.
	waits *waits
}

type depsKey struct{}

// withDeps returns ctx carrying d (provision's own tests).
func withDeps(ctx context.Context, d deps) context.Context {
	return context.WithValue(ctx, depsKey{}, d)
}

// depsOf is what ctx carries; nothing, in production.
func depsOf(ctx context.Context) deps {
	d, _ := ctx.Value(depsKey{}).(deps)
	return d
}

// waitsOf are the pauses for calls made under ctx.
func waitsOf(ctx context.Context) waits {
	if w := depsOf(ctx).waits; w != nil {
		return *w
	}
	return productionWaits()
}

// connectFor opens the session a command works with under ctx.
func connectFor(ctx context.Context, a AWS) (*session, error) {
	if c := depsOf(ctx).connect; c != nil {
		return c(ctx, a)
	}
	return connectAWS(ctx, a)
}
