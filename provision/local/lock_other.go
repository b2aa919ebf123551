//go:build !unix

package local

import "context"

// Lock is a no-op where flock does not exist; AWS-side convergence (tags,
// client token, keeping the oldest instance) still applies.
func Lock(context.Context, string, string, func()) (func(), error) { return func() {}, nil }
