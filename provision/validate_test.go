package provision

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/cloudinit"
)

func TestUpOptionsValidateDefaults(t *testing.T) {
	t.Parallel()
	o := UpOptions{Stack: Stack{Name: "demo", StateDir: t.TempDir()}, AllowCIDRs: []string{"198.51.100.7", "198.51.100.7/32"}}
	if _, err := o.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if o.InstanceType != DefaultInstanceType {
		t.Errorf("InstanceType = %q, want default %q", o.InstanceType, DefaultInstanceType)
	}
	if o.MLflowVersion != cloudinit.DefaultMLflowVersion {
		t.Errorf("MLflowVersion = %q, want default %q", o.MLflowVersion, cloudinit.DefaultMLflowVersion)
	}
	if o.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v, want default %v", o.Timeout, DefaultTimeout)
	}
	if o.Output != "table" {
		t.Errorf("Output = %q, want table", o.Output)
	}
	// CIDRs are normalised in place.
	if fmt.Sprint(o.AllowCIDRs) != "[198.51.100.7/32]" {
		t.Errorf("AllowCIDRs = %q, want [198.51.100.7/32]", o.AllowCIDRs)
	}
	// Writers default to io.Discard so commands never write to a nil writer.
	if o.Out != io.Discard || o.Log != io.Discard {
		t.Errorf("Out/Log not defaulted to io.Discard")
	}
}

func TestUpOptionsValidateKeepsExplicitValues(t *testing.T) {
	t.Parallel()
	o := UpOptions{Stack: Stack{Name: "demo", StateDir: "/x"}, InstanceType: "t3.small", MLflowVersion: "3.5.0", Timeout: time.Minute, TTL: "2d"}
	ttl, err := o.validate()
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	if o.InstanceType != "t3.small" || o.MLflowVersion != "3.5.0" || o.Timeout != time.Minute || ttl != 48*time.Hour {
		t.Errorf("explicit values overwritten: %+v, ttl %v", o, ttl)
	}
}

func TestUpOptionsValidateRejects(t *testing.T) {
	t.Parallel()
	valid := func() UpOptions { return UpOptions{Stack: Stack{Name: "demo", StateDir: "/tmp/state"}} }
	tests := []struct {
		name    string
		mutate  func(*UpOptions)
		wantMsg string
	}{
		{"bad stack", func(o *UpOptions) { o.Stack.Name = "Demo" }, "stack name"},
		{"bad region", func(o *UpOptions) { o.Region = "EU-WEST-3" }, "region"},
		{"bad instance type", func(o *UpOptions) { o.InstanceType = "micro" }, "instance type"},
		{"mlflow latest", func(o *UpOptions) { o.MLflowVersion = "latest" }, "--mlflow-version"},
		{"mlflow two parts", func(o *UpOptions) { o.MLflowVersion = "3.5" }, "--mlflow-version"},
		// cloudinit refuses releases before 3.5.0 (no --allowed-hosts); that must be
		// caught here, before any AWS resource is created, not at instance launch.
		{"mlflow too old", func(o *UpOptions) { o.MLflowVersion = "3.4.0" }, "3.4.0"},
		{"negative timeout", func(o *UpOptions) { o.Timeout = -time.Second }, "--timeout"},
		{"missing state dir", func(o *UpOptions) { o.StateDir = "" }, "state directory"},
		{"bad cidr", func(o *UpOptions) { o.AllowCIDRs = []string{"198.51.100.7/24"} }, "host bits"},
		{"bad output", func(o *UpOptions) { o.Output = "yaml" }, "--output"},
		{"ttl without unit", func(o *UpOptions) { o.TTL = "4" }, "--ttl"},
		{"ttl too long", func(o *UpOptions) { o.TTL = "91d" }, "at most 90d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.mutate(&o)
			_, err := o.validate()
			if err == nil {
				t.Fatalf("validate accepted %+v", o)
			}
			if !cloud.IsUsage(err) {
				t.Errorf("error %T is not a UsageError", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// TestDownOptionsValidate: the sweep rules that used to live in cmd.
func TestDownOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    DownOptions
		want string // "" : valid
	}{
		{"one stack", DownOptions{Stack: Stack{Name: "demo", StateDir: "/s"}}, ""},
		{"sweep", DownOptions{Stack: Stack{StateDir: "/s"}, Expired: true}, ""},
		{"sweep older than", DownOptions{Stack: Stack{StateDir: "/s"}, All: true, OlderThan: time.Hour}, ""},
		{"older-than alone", DownOptions{Stack: Stack{Name: "demo", StateDir: "/s"}, OlderThan: time.Hour}, "--older-than goes with"},
		{"negative older-than", DownOptions{Stack: Stack{StateDir: "/s"}, All: true, OlderThan: -time.Hour}, "must be positive"},
		{"sweep with stack", DownOptions{Stack: Stack{Name: "demo", StateDir: "/s"}, Expired: true}, "--stack cannot be combined"},
		{"no stack", DownOptions{Stack: Stack{StateDir: "/s"}}, "missing stack name"},
		{"sweep without state dir", DownOptions{All: true}, "state directory"},
		{"negative timeout", DownOptions{Stack: Stack{Name: "demo", StateDir: "/s"}, Timeout: -1}, "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.validate()
			if tt.want == "" {
				if err != nil || tt.o.Timeout != DefaultTimeout || tt.o.Out == nil {
					t.Fatalf("validate = %v (timeout %v)", err, tt.o.Timeout)
				}
				return
			}
			if !cloud.IsUsage(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want a usage error with %q", err, tt.want)
			}
		})
	}
}
