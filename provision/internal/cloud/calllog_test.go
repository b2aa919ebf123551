package cloud_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"
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
			if got := cloud.IsMutating(tt.call); got != tt.mutating {
				t.Errorf("isMutating(%q) = %v, want %v", tt.call, got, tt.mutating)
			}
		})
	}
}

func TestCallLog(t *testing.T) {
	t.Parallel()
	var l cloud.CallLog // the zero value is ready to use
	for _, c := range []string{"EC2.DescribeVpcs", "S3.PutObject", "EC2.DescribeVpcs", "IAM.CreateUser", "S3.PutObject", "S3.PutObject"} {
		l.Add(c)
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
	t.Parallel()
	var l cloud.CallLog
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Add("EC2.RunInstances")
			_ = l.Summary()
		}()
	}
	wg.Wait()
	if n := len(l.Calls()); n != 50 {
		t.Errorf("recorded %d calls, want 50", n)
	}
}
