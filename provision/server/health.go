package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// healthPoll is the pause between two /health requests.
var healthPoll = 3 * time.Second

// DiagnoseAfter is how long every attempt must have failed the same way
// before WaitHealthy says why; it then keeps waiting.
var DiagnoseAfter = time.Minute

// Stall is why the server does not answer.
type Stall int

const (
	Dropped Stall = iota + 1 // connections time out: packets are dropped on the way
	Refused                  // the host answers, nothing listens on the port yet
)

// dialTimeout bounds a connection attempt: past it, the SYN was dropped.
const healthDialTimeout = 4 * time.Second

// WaitHealthy polls url until it answers 200 or wait runs out, over TLS
// that trusts tlsCfg's roots alone (the pinned certificate; nil for plain
// HTTP in tests). When for DiagnoseAfter every attempt failed the same way,
// it says which way, once, with explain's advice for it, and keeps waiting.
func WaitHealthy(ctx context.Context, url string, tlsCfg *tls.Config, wait time.Duration, log Logger, explain func(Stall) string) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: pinnedTransport(tlsCfg)}
	deadline := time.Now().Add(wait)
	last := "no answer"
	var streak Stall
	var since time.Time
	said := false
	live := log.Wait("waiting for the tracking server at %s (up to %s)", url, wait)
	defer live.Stop()
	for {
		status, err := probe(ctx, client, url)
		if status == http.StatusOK {
			live.Done("the tracking server answers")
			return nil
		}
		last = describe(status, err)
		if kind := stallOf(status, err); kind != streak {
			streak, since = kind, time.Now()
		}
		if streak != 0 && !said && time.Since(since) >= DiagnoseAfter && explain != nil {
			log.Warn("%s", explain(streak))
			said = true
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tracking server at %s not healthy after %s (last: %s)", url, wait, last)
		}
		if err := sleep(ctx, healthPoll); err != nil {
			return err
		}
	}
}

// Probe asks url once within timeout, over TLS that trusts tlsCfg's roots
// alone (nil: plain HTTP): the status it answered, or why none.
func Probe(ctx context.Context, url string, tlsCfg *tls.Config, timeout time.Duration) (int, error) {
	client := &http.Client{Timeout: timeout, Transport: pinnedTransport(tlsCfg)}
	status, err := probe(ctx, client, url)
	if err != nil {
		return 0, errors.New(describe(0, err))
	}
	return status, nil
}

// probe makes one request and returns the status (0 without an answer).
func probe(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("health check %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // drain so the connection is reused
	resp.Body.Close()
	return resp.StatusCode, nil
}

// stallOf tells a dropped connection (the dial timed out, or a proxy gave
// up on the way) from a refused one; 0 is neither.
func stallOf(status int, err error) Stall {
	var op *net.OpError
	switch {
	case err == nil && (status == http.StatusGatewayTimeout || status == http.StatusBadGateway):
		return Dropped // an HTTP proxy could not reach the server
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.As(err, &op) && op.Op == "dial" && op.Timeout():
		return Dropped
	}
	return 0
}

func describe(status int, err error) string {
	switch {
	case err != nil && errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case err != nil && stallOf(0, err) == Dropped:
		return "connection timed out"
	case err != nil:
		return "no answer"
	}
	return http.StatusText(status) + fmt.Sprintf(" (%d)", status)
}

// ProxyFor is the HTTP proxy the environment names for url, or "".
func ProxyFor(url string) string { return proxyFor(url, http.ProxyFromEnvironment) }

func proxyFor(target string, proxy func(*http.Request) (*url.URL, error)) string {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return ""
	}
	p, err := proxy(req)
	if err != nil || p == nil {
		return ""
	}
	p.User = nil // never print proxy credentials
	return p.String()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
