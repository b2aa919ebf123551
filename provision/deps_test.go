package provision

import (
	"context"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

// fakeWaits make retried errors and polls cost milliseconds; how long S3
// may hold a bucket name stays production's (tests shorten it with ctxWaits).
func fakeWaits() cloud.Waits {
	w := cloud.ProductionWaits()
	w.RetryFirst, w.RetryMax = time.Millisecond, 2*time.Millisecond
	w.PollFirst, w.PollMax = time.Millisecond, 2*time.Millisecond
	w.DBPollFirst, w.DBPollMax = time.Millisecond, time.Millisecond
	return w
}

// ctx is a context whose commands work on f, with fakeWaits: each test
// passes its own fake in, so tests over fakes run in parallel.
func (f *fakeAWS) ctx() context.Context { return f.ctxWaits(nil) }

// ctxWaits is ctx with the waits edit changes.
func (f *fakeAWS) ctxWaits(edit func(w *cloud.Waits)) context.Context {
	w := fakeWaits()
	if edit != nil {
		edit(&w)
	}
	return cloud.WithDeps(context.Background(), cloud.Deps{Connect: f.connect, Waits: &w})
}

// connect is connectAWS for the fake: it counts, and mirrors the calls
// into the command's AWS.Calls.
func (f *fakeAWS) connect(_ context.Context, a cloud.AWS) (*cloud.Session, error) {
	f.mu.Lock()
	f.connects++
	f.mirror = a.Calls
	f.mu.Unlock()
	return f.session(), nil
}

// newInstalledFake is newFakeAWS: commands reach it under f.ctx().
func newInstalledFake(*testing.T) *fakeAWS { return newFakeAWS() }

// TestDepsOf: production's context carries nothing, so commands connect
// to AWS and wait as production does; a test's carries its own.
func TestDepsOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if d := cloud.DepsOf(ctx); d.Connect != nil || d.Waits != nil {
		t.Errorf("production deps = %+v, want none", d)
	}
	if cloud.WaitsOf(ctx) != cloud.ProductionWaits() {
		t.Errorf("production waits = %+v", cloud.WaitsOf(ctx))
	}
	f := newFakeAWS()
	ctx = f.ctxWaits(func(w *cloud.Waits) { w.NameBusy = time.Second })
	if w := cloud.WaitsOf(ctx); w.RetryFirst != time.Millisecond || w.NameBusy != time.Second {
		t.Errorf("test waits = %+v", w)
	}
	if s, err := cloud.ConnectFor(ctx, cloud.AWS{}); err != nil || s.Account != fakeAccount || f.connects != 1 {
		t.Errorf("connectFor = %+v, %v (%d connects)", s, err, f.connects)
	}
}
