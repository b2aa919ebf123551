package testhooks

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// TestWithFrom: the hooks a context carries come back whole; a context
// without them says so, and a nested With replaces them.
func TestWithFrom(t *testing.T) {
	t.Parallel()
	bare := context.Background()
	if h, ok := From(bare); ok || h.HealthURL != "" || h.TrackingURI != "" || h.DetectIP != nil {
		t.Errorf("From(background) = %+v, %v; want zero, false", h, ok)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	ctx := With(bare, Hooks{HealthURL: "http://h/health", TrackingURI: "http://t", DetectIP: func() (netip.Addr, error) { return ip, nil }})
	h, ok := From(ctx)
	if !ok || h.HealthURL != "http://h/health" || h.TrackingURI != "http://t" || h.DetectIP == nil {
		t.Fatalf("From = %+v, %v; want the hooks set", h, ok)
	}
	if got, err := h.DetectIP(); got != ip || err != nil {
		t.Errorf("DetectIP = %v, %v", got, err)
	}
	inner := With(ctx, Hooks{DetectIP: func() (netip.Addr, error) { return netip.Addr{}, errors.New("no") }})
	if h, _ := From(inner); h.TrackingURI != "" || h.HealthURL != "" {
		t.Errorf("a nested With kept the outer hooks: %+v", h)
	}
	if h, _ := From(ctx); h.TrackingURI != "http://t" {
		t.Error("a nested With changed the outer context's hooks")
	}
}
