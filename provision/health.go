package provision

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// checkIPURL answers with the caller's public IP in plain text.
const checkIPURL = "https://checkip.amazonaws.com"

// DetectPublicIP asks checkip.amazonaws.com for the caller's public IP.
func DetectPublicIP() (netip.Addr, error) {
	return detectPublicIP(context.Background(), checkIPURL)
}

func detectPublicIP(ctx context.Context, url string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return netip.Addr{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 100))
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(string(b)))
}

// waitHealthy polls url until it answers 200 or wait runs out.
func waitHealthy(ctx context.Context, url string, wait time.Duration, log *progress) error {
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
				log.info("tracking server answered after %s", time.Since(start).Round(time.Second))
				return nil
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tracking server at %s not healthy after %s (last: %s)", url, wait, last)
		}
		if err := sleep(ctx, 3*time.Second); err != nil {
			return err
		}
	}
}
