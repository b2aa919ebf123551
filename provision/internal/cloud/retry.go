package cloud

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// newRetryer is the SDK's standard retryer (throttling codes such as
// Throttling, SlowDown and RequestLimitExceeded, 5xx, and dropped
// connections) with more attempts and without the client-side retry quota:
// the quota gives up on a whole command after a burst of throttling, long
// before a CLI user would. Eventual-consistency errors are not its business:
// retryOn handles those by name.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.MaxBackoff = 10 * time.Second
		o.RateLimiter = ratelimit.None
	})
}

// RetryOn calls fn until it succeeds, fails with an error that match does not
// accept, or wait has passed. It is for named eventual-consistency errors
// (IAM propagation, DependencyViolation), never for errors in general. Its
// back-off is the context's (waitsOf).
func RetryOn(ctx context.Context, wait time.Duration, match func(error) bool, onRetry func(error), fn func() error) error {
	w := WaitsOf(ctx)
	deadline := time.Now().Add(wait)
	delay := w.RetryFirst
	for {
		err := fn()
		if err == nil || !match(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
		if err := Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, w.RetryMax)
	}
}

// isIAMPropagation matches IAM's answer for an entity created a moment ago
// that a later call cannot see yet.
func isIAMPropagation(err error) bool { return HasCode(err, "NoSuchEntity") }

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
