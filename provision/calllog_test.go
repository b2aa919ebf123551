package provision

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestIsMutating(t *testing.T) {
	t.Parallel()
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
			if got := isMutating(tt.call); got != tt.mutating {
				t.Errorf("isMutating(%q) = %v, want %v", tt.call, got, tt.mutating)
			}
		})
	}
}

func TestCallLog(t *testing.T) {
	t.Parallel()
	var l CallLog // the zero value is ready to use
	for _, c := range []string{"EC2.DescribeVpcs", "S3.PutObject", "EC2.DescribeVpcs", "IAM.CreateUser", "S3.PutObject", "S3.PutObject"} {
		l.add(c)
	}
	if got := fmt.Sprint(l.calls()); got != "[EC2.DescribeVpcs S3.PutObject EC2.DescribeVpcs IAM.CreateUser S3.PutObject S3.PutObject]" {
		t.Errorf("Calls() = %s, want call order", got)
	}
	if got := fmt.Sprint(l.mutating()); got != "[S3.PutObject IAM.CreateUser S3.PutObject S3.PutObject]" {
		t.Errorf("Mutating() = %s", got)
	}
	want := "6 calls (4 mutating): EC2.DescribeVpcs×2, IAM.CreateUser×1, S3.PutObject×3"
	if got := l.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	// Calls returns a copy: callers cannot corrupt the log.
	c := l.calls()
	c[0] = "tampered"
	if l.calls()[0] != "EC2.DescribeVpcs" {
		t.Error("Calls() exposes the internal slice")
	}
	l.reset()
	if len(l.calls()) != 0 || len(l.mutating()) != 0 || !strings.HasPrefix(l.Summary(), "0 calls (0 mutating)") {
		t.Errorf("after Reset: calls %v, summary %q", l.calls(), l.Summary())
	}
}

// Independent resources are created concurrently, so the log must be safe
// for concurrent use (run with -race to make this meaningful).
func TestCallLogConcurrent(t *testing.T) {
	t.Parallel()
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
	if n := len(l.calls()); n != 50 {
		t.Errorf("recorded %d calls, want 50", n)
	}
}
