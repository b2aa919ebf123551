package provision

import (
	"context"
	"testing"
	"time"
)

// fakeWaits make retried errors and polls cost milliseconds; how long S3
// may hold a bucket name stays production's (tests shorten it with ctxWaits).
func fakeWaits() waits {
	w := productionWaits()
	w.retryFirst, w.retryMax = time.Millisecond, 2*time.Millisecond
	w.pollFirst, w.pollMax = time.Millisecond, 2*time.Millisecond
	w.dbPollFirst, w.dbPollMax = time.Millisecond, time.Millisecond
	return w
}

// ctx is a context whose commands work on f, with fakeWaits: each test
// passes its own fake in, so tests over fakes run in parallel.
func (f *fakeAWS) ctx() context.Context { return f.ctxWaits(nil) }

// ctxWaits is ctx with the waits edit changes.
func (f *fakeAWS) ctxWaits(edit func(w *waits)) context.Context {
	w := fakeWaits()
	if edit != nil {
		edit(&w)
	}
	return withDeps(context.Background(), deps{connect: f.connect, waits: &w})
}

// connect is connectAWS for the fake: it counts, and mirrors the calls
// into the command's AWS.Calls.
func (f *fakeAWS) connect(_ context.Context, a AWS) (*session, error) {
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
	if d := depsOf(ctx); d.connect != nil || d.waits != nil {
		t.Errorf("production deps = %+v, want none", d)
	}
	if waitsOf(ctx) != productionWaits() {
		t.Errorf("production waits = %+v", waitsOf(ctx))
	}
	f := newFakeAWS()
	ctx = f.ctxWaits(func(w *waits) { w.nameBusy = time.Second })
	if w := waitsOf(ctx); w.retryFirst != time.Millisecond || w.nameBusy != time.Second {
		t.Errorf("test waits = %+v", w)
	}
	if s, err := connectFor(ctx, AWS{}); err != nil || s.account != fakeAccount || f.connects != 1 {
		t.Errorf("connectFor = %+v, %v (%d connects)", s, err, f.connects)
	}
}
