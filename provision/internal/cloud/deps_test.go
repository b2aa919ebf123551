package cloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

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
	f := cloudfake.NewFakeAWS()
	ctx = f.CtxWaits(func(w *cloud.Waits) { w.NameBusy = time.Second })
	if w := cloud.WaitsOf(ctx); w.RetryFirst != time.Millisecond || w.NameBusy != time.Second {
		t.Errorf("test waits = %+v", w)
	}
	if s, err := cloud.ConnectFor(ctx, cloud.AWS{}); err != nil || s.Account != cloudfake.FakeAccount || f.Connects != 1 {
		t.Errorf("connectFor = %+v, %v (%d connects)", s, err, f.Connects)
	}
}
