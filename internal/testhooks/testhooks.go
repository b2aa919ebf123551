// Package testhooks carries the test-only overrides of where mlstack
// reaches out: the URL polled for /health, the MLflow server signed in to,
// the public-IP lookup. They travel in a context.Context, and the package
// is internal, so only this module can set them: a program that imports
// provision cannot point a stack's admin login at some other server by
// filling in an option, and the shipped binary has no flag for them.
package testhooks

import (
	"context"
	"net/netip"
)

// Hooks are the overrides; a zero field leaves mlstack's own behaviour.
type Hooks struct {
	// HealthURL is polled instead of the server's /health; up also signs
	// in to the server it names (its URL without /health).
	HealthURL string
	// TrackingURI is the MLflow server that users, creds rotate and down
	// reach instead of the stack's instance.
	TrackingURI string
	// DetectIP finds the caller's public IP instead of asking
	// checkip.amazonaws.com.
	DetectIP func() (netip.Addr, error)
}

type key struct{}

// With returns ctx carrying h.
func With(ctx context.Context, h Hooks) context.Context {
	return context.WithValue(ctx, key{}, h)
}

// From returns the hooks ctx carries, and whether it carries any.
func From(ctx context.Context) (Hooks, bool) {
	h, ok := ctx.Value(key{}).(Hooks)
	return h, ok
}
