package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// statusServer answers the given statuses in turn, then the last one forever.
func statusServer(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(statuses) {
			i = len(statuses) - 1
		}
		w.WriteHeader(statuses[i])
		_, _ = w.Write([]byte("OK"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestWaitHealthyEventually(t *testing.T) {
	t.Parallel() // polls every 3 s: two retries take ~6 s
	srv, n := statusServer(t, 503, 503, 200)
	if err := WaitHealthy(context.Background(), srv.URL+"/health", time.Minute, nopLog{}); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("server polled %d times, want 3", got)
	}
}

func TestWaitHealthyImmediate(t *testing.T) {
	srv, n := statusServer(t, 200)
	start := time.Now()
	if err := WaitHealthy(context.Background(), srv.URL, time.Minute, nopLog{}); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if n.Load() != 1 || time.Since(start) > time.Second {
		t.Errorf("polled %d times in %s, want once and at once", n.Load(), time.Since(start))
	}
}

func TestWaitHealthyTimeout(t *testing.T) {
	t.Parallel() // one 3 s sleep before the deadline check fails
	srv, _ := statusServer(t, 503)
	err := WaitHealthy(context.Background(), srv.URL+"/health", time.Second, nopLog{})
	if err == nil {
		t.Fatal("WaitHealthy succeeded against a server that always answers 503")
	}
	for _, want := range []string{"not healthy", "503", srv.URL} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWaitHealthyCancelled(t *testing.T) {
	srv, _ := statusServer(t, 503)
	tests := []struct {
		name  string
		after time.Duration // cancel after this long; 0 = before the call
	}{
		{"cancelled before", 0},
		{"cancelled while sleeping", 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.after == 0 {
				cancel()
			} else {
				time.AfterFunc(tt.after, cancel)
			}
			start := time.Now()
			err := WaitHealthy(ctx, srv.URL, time.Minute, nopLog{})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > tt.after+time.Second {
				t.Errorf("returned %s after start, want promptly after cancel", d)
			}
		})
	}
}

// nopLog is a Logger that drops everything.
type nopLog struct{}

func (nopLog) Step(string, ...any) {}
func (nopLog) Info(string, ...any) {}
func (nopLog) Warn(string, ...any) {}
