package provision

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/smithy-go"
)

func TestIsMutating(t *testing.T) {
	tests := []struct {
		call     string
		mutating bool
	}{
		{"EC2.DescribeInstances", false},
		{"EC2.DescribeSecurityGroups", false},
		{"S3.HeadBucket", false},
		{"S3.GetBucketEncryption", false},
		{"S3.ListObjectVersions", false},
		{"IAM.GetUser", false},
		{"IAM.ListAccessKeys", false},
		{"STS.GetCallerIdentity", false},
		{"EC2.RunInstances", true},
		{"EC2.TerminateInstances", true},
		{"EC2.AuthorizeSecurityGroupIngress", true},
		{"S3.PutObject", true},
		{"S3.CreateBucket", true},
		{"S3.DeleteObjects", true},
		{"IAM.CreateUser", true},
		{"IAM.PutUserPolicy", true},
		{"IAM.AddRoleToInstanceProfile", true},
	}
	for _, tt := range tests {
		t.Run(tt.call, func(t *testing.T) {
			if got := IsMutating(tt.call); got != tt.mutating {
				t.Errorf("IsMutating(%q) = %v, want %v", tt.call, got, tt.mutating)
			}
		})
	}
}

func TestCallLog(t *testing.T) {
	var l CallLog // the zero value is ready to use
	for _, c := range []string{"EC2.DescribeVpcs", "S3.PutObject", "EC2.DescribeVpcs", "IAM.CreateUser", "S3.PutObject", "S3.PutObject"} {
		l.add(c)
	}
	if got := fmt.Sprint(l.Calls()); got != "[EC2.DescribeVpcs S3.PutObject EC2.DescribeVpcs IAM.CreateUser S3.PutObject S3.PutObject]" {
		t.Errorf("Calls() = %s, want call order", got)
	}
	if got := fmt.Sprint(l.Mutating()); got != "[S3.PutObject IAM.CreateUser S3.PutObject S3.PutObject]" {
		t.Errorf("Mutating() = %s", got)
	}
	want := "6 calls (4 mutating): EC2.DescribeVpcs×2, IAM.CreateUser×1, S3.PutObject×3"
	if got := l.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	// Calls returns a copy: callers cannot corrupt the log.
	c := l.Calls()
	c[0] = "tampered"
	if l.Calls()[0] != "EC2.DescribeVpcs" {
		t.Error("Calls() exposes the internal slice")
	}
	l.Reset()
	if len(l.Calls()) != 0 || len(l.Mutating()) != 0 || !strings.HasPrefix(l.Summary(), "0 calls (0 mutating)") {
		t.Errorf("after Reset: calls %v, summary %q", l.Calls(), l.Summary())
	}
}

// Independent resources are created concurrently, so the log must be safe
// for concurrent use (run with -race to make this meaningful).
func TestCallLogConcurrent(t *testing.T) {
	var l CallLog
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.add("EC2.RunInstances")
			_ = l.Summary()
		}()
	}
	wg.Wait()
	if n := len(l.Calls()); n != 50 {
		t.Errorf("recorded %d calls, want 50", n)
	}
}

func TestErrorCodeAndHasCode(t *testing.T) {
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
			if got := errorCode(tt.err); got != tt.code {
				t.Errorf("errorCode = %q, want %q", got, tt.code)
			}
			if got := hasCode(tt.err, "Throttling", "NoSuchEntity"); got != tt.hasNoSE {
				t.Errorf("hasCode(..., NoSuchEntity) = %v, want %v", got, tt.hasNoSE)
			}
			if got := hasCode(tt.err, "AccessDenied"); got != tt.hasOther {
				t.Errorf("hasCode(..., AccessDenied) = %v, want %v", got, tt.hasOther)
			}
			// No codes given never matches, not even an error without a code.
			if hasCode(tt.err) {
				t.Error("hasCode with no codes = true")
			}
		})
	}
}

func TestNotOwnedError(t *testing.T) {
	err := error(&NotOwnedError{Kind: "S3 bucket", Name: "mlstack-demo-123456789012-eu-west-3", Stack: "demo"})
	msg := err.Error()
	for _, want := range []string{"S3 bucket", `"mlstack-demo-123456789012-eu-west-3"`, "mlstack:stack=demo", "--stack"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	// Callers find it through wrapping; it is not a usage error (exit code 2 is for bad flags).
	var no *NotOwnedError
	if !errors.As(fmt.Errorf("up: %w", err), &no) || no.Stack != "demo" {
		t.Error("errors.As does not find a wrapped NotOwnedError")
	}
	if IsUsage(err) {
		t.Error("NotOwnedError reported as a UsageError")
	}
}
