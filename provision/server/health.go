package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthPoll is the pause between two /health requests.
var healthPoll = 3 * time.Second

// WaitHealthy polls url until it answers 200 or wait runs out.
func WaitHealthy(ctx context.Context, url string, wait time.Duration, log Logger) error {
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	deadline := start.Add(wait)
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health check %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // drain so the connection is reused
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				log.Info("tracking server answered after %s", time.Since(start).Round(time.Second))
				return nil
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tracking server at %s not healthy after %s (last: %s)", url, wait, last)
		}
		if err := sleep(ctx, healthPoll); err != nil {
			return err
		}
	}
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
