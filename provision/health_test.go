package provision

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	if err := waitHealthy(context.Background(), srv.URL+"/health", time.Minute, discardLog()); err != nil {
		t.Fatalf("waitHealthy: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("server polled %d times, want 3", got)
	}
}

func TestWaitHealthyImmediate(t *testing.T) {
	srv, n := statusServer(t, 200)
	start := time.Now()
	if err := waitHealthy(context.Background(), srv.URL, time.Minute, discardLog()); err != nil {
		t.Fatalf("waitHealthy: %v", err)
	}
	if n.Load() != 1 || time.Since(start) > time.Second {
		t.Errorf("polled %d times in %s, want once and at once", n.Load(), time.Since(start))
	}
}

func TestWaitHealthyTimeout(t *testing.T) {
	t.Parallel() // one 3 s sleep before the deadline check fails
	srv, _ := statusServer(t, 503)
	err := waitHealthy(context.Background(), srv.URL+"/health", time.Second, discardLog())
	if err == nil {
		t.Fatal("waitHealthy succeeded against a server that always answers 503")
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
			err := waitHealthy(ctx, srv.URL, time.Minute, discardLog())
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > tt.after+time.Second {
				t.Errorf("returned %s after start, want promptly after cancel", d)
			}
		})
	}
}

func TestDetectPublicIP(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    string
		wantErr bool
	}{
		{"checkip answer", 200, "198.51.100.7\n", "198.51.100.7", false},
		{"no newline", 200, "203.0.113.9", "203.0.113.9", false},
		{"garbage", 200, "<html>hello</html>", "", true},
		{"empty", 200, "", "", true},
		{"server error", 500, "198.51.100.7\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			got, err := detectPublicIP(context.Background(), srv.URL)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("detectPublicIP = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("detectPublicIP: %v", err)
			}
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("detectPublicIP = %v, want %s", got, tt.want)
			}
		})
	}
}

// detectCIDR (up.go) turns the detected address into the single allowed /32.
func TestDetectCIDR(t *testing.T) {
	tests := []struct {
		name    string
		ip      string
		err     error
		want    string
		wantErr bool
	}{
		{"ipv4", "198.51.100.7", nil, "198.51.100.7/32", false},
		{"ipv6 refused", "2001:db8::1", nil, "", true},
		{"detection failed", "", errors.New("timeout"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detectCIDR(func() (netip.Addr, error) {
				if tt.err != nil {
					return netip.Addr{}, tt.err
				}
				return netip.MustParseAddr(tt.ip), nil
			})
			if tt.wantErr {
				if !IsUsage(err) {
					t.Fatalf("detectCIDR = %q, %v; want a UsageError", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("detectCIDR = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
