package cloud_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/smithy-go"
)

func TestErrorCodeAndHasCode(t *testing.T) {
	t.Parallel()
	api := &smithy.GenericAPIError{Code: "NoSuchEntity", Message: "The user with name x cannot be found."}
	tests := []struct {
		name     string
		err      error
		code     string
		hasNoSE  bool
		hasOther bool
	}{
		{"nil", nil, "", false, false},
		{"plain error", errors.New("NoSuchEntity"), "", false, false},
		{"api error", api, "NoSuchEntity", true, false},
		{"wrapped once", fmt.Errorf("reading user: %w", api), "NoSuchEntity", true, false},
		{"wrapped twice", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", api)), "NoSuchEntity", true, false},
		{"joined", errors.Join(errors.New("other"), api), "NoSuchEntity", true, false},
		{"not wrapped with %v", fmt.Errorf("reading user: %v", api), "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloud.ErrorCode(tt.err); got != tt.code {
				t.Errorf("errorCode = %q, want %q", got, tt.code)
			}
			if got := cloud.HasCode(tt.err, "Throttling", "NoSuchEntity"); got != tt.hasNoSE {
				t.Errorf("hasCode(..., NoSuchEntity) = %v, want %v", got, tt.hasNoSE)
			}
			if got := cloud.HasCode(tt.err, "AccessDenied"); got != tt.hasOther {
				t.Errorf("hasCode(..., AccessDenied) = %v, want %v", got, tt.hasOther)
			}
			// No codes given never matches, not even an error without a code.
			if cloud.HasCode(tt.err) {
				t.Error("hasCode with no codes = true")
			}
		})
	}
}

func TestNotOwnedError(t *testing.T) {
	t.Parallel()
	err := error(&cloud.NotOwnedError{Kind: "S3 bucket", Name: "mlstack-demo-123456789012-eu-west-3", Stack: "demo"})
	msg := err.Error()
	for _, want := range []string{"S3 bucket", `"mlstack-demo-123456789012-eu-west-3"`, "mlstack:stack=demo", "--stack"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	// Callers find it through wrapping; it is not a usage error (exit code 2 is for bad flags).
	var no *cloud.NotOwnedError
	if !errors.As(fmt.Errorf("up: %w", err), &no) || no.Stack != "demo" {
		t.Error("errors.As does not find a wrapped notOwnedError")
	}
	if cloud.IsUsage(err) {
		t.Error("notOwnedError reported as a UsageError")
	}
}
