package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
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
	if err := WaitHealthy(context.Background(), srv.URL+"/health", nil, time.Minute, nopLog{}, nil); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("server polled %d times, want 3", got)
	}
}

func TestWaitHealthyImmediate(t *testing.T) {
	srv, n := statusServer(t, 200)
	start := time.Now()
	if err := WaitHealthy(context.Background(), srv.URL, nil, time.Minute, nopLog{}, nil); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if n.Load() != 1 || time.Since(start) > time.Second {
		t.Errorf("polled %d times in %s, want once and at once", n.Load(), time.Since(start))
	}
}

func TestWaitHealthyTimeout(t *testing.T) {
	t.Parallel() // one 3 s sleep before the deadline check fails
	srv, _ := statusServer(t, 503)
	err := WaitHealthy(context.Background(), srv.URL+"/health", nil, time.Second, nopLog{}, nil)
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
			err := WaitHealthy(ctx, srv.URL, nil, time.Minute, nopLog{}, nil)
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

func (nopLog) Step(string, ...any)         {}
func (nopLog) Info(string, ...any)         {}
func (nopLog) Warn(string, ...any)         {}
func (nopLog) Wait(string, ...any) Waiting { return nopLog{} }
func (nopLog) Done(string, ...any)         {}
func (nopLog) Stop()                       {}

// TestWaitHealthyDiagnoses: a minute (here: shortened) of refused or
// dropped connections is said once, with the explanation for that kind,
// and the wait goes on until the server answers.
func TestWaitHealthyDiagnoses(t *testing.T) {
	oldPoll, oldAfter := healthPoll, DiagnoseAfter
	healthPoll, DiagnoseAfter = 10*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { healthPoll, DiagnoseAfter = oldPoll, oldAfter })

	// Refused: a port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/health"
	l.Close()
	var log bytes.Buffer
	err = WaitHealthy(context.Background(), closed, nil, 300*time.Millisecond, textLog{&log}, func(s Stall) string { return fmt.Sprintf("stall %d", s) })
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v", err)
	}
	if strings.Count(log.String(), fmt.Sprintf("stall %d", Refused)) != 1 {
		t.Errorf("refused not said once:\n%s", log.String())
	}

	// Answers after the diagnosis: the wait went on.
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 10 {
			w.WriteHeader(http.StatusGatewayTimeout) // a proxy that cannot reach the server
			return
		}
		_, _ = w.Write([]byte("OK"))
	}))
	t.Cleanup(srv.Close)
	log.Reset()
	if err := WaitHealthy(context.Background(), srv.URL, nil, time.Minute, textLog{&log}, func(s Stall) string { return fmt.Sprintf("stall %d", s) }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("stall %d", Dropped)) || !strings.Contains(log.String(), "the tracking server answers") {
		t.Errorf("dropped via a proxy:\n%s", log.String())
	}
}

func TestStallOf(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	for _, c := range []struct {
		status int
		err    error
		want   Stall
	}{
		{0, timeout, Dropped},
		{0, fmt.Errorf("Get: %w", timeout), Dropped},
		{0, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, Refused},
		{0, &net.OpError{Op: "read", Err: timeoutErr{}}, 0},
		{http.StatusGatewayTimeout, nil, Dropped},
		{http.StatusServiceUnavailable, nil, 0},
		{0, errors.New("tls: bad certificate"), 0},
	} {
		if got := stallOf(c.status, c.err); got != c.want {
			t.Errorf("stallOf(%d, %v) = %d, want %d", c.status, c.err, got, c.want)
		}
	}
	proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://user:secret@proxy.example:3128") }
	if p := proxyFor("http://ec2-1-2-3-4.example:5000/health", proxy); p != "http://proxy.example:3128" {
		t.Errorf("proxyFor = %q (credentials must not show)", p)
	}
	none := func(*http.Request) (*url.URL, error) { return nil, nil }
	if p := proxyFor("http://ec2-1-2-3-4.example:5000/health", none); p != "" {
		t.Errorf("no proxy: %q", p)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
