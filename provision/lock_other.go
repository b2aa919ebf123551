//go:build !unix

package provision

import "context"

// lockStack is a no-op where flock does not exist; AWS-side convergence
// (tags, client token, keeping the oldest instance) still applies.
func lockStack(context.Context, string, string, *progress) (func(), error) { return func() {}, nil }
