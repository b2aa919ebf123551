package provision

import (
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
)

func TestValidateStack(t *testing.T) {
	tests := []struct {
		name  string
		stack string
		ok    bool
	}{
		{"simple", "demo", true},
		{"one letter", "a", true},
		{"digit and hyphen", "ml-1", true},
		{"max length", strings.Repeat("a", MaxStackLen), true},
		{"max length mixed", "a" + strings.Repeat("b1-", 7) + "cd", true},
		{"empty", "", false},
		{"uppercase", "Demo", false},
		{"leading digit", "1abc", false},
		{"underscore", "a_b", false},
		{"doubled hyphen", "a--b", false},
		{"trailing hyphen", "abc-", false},
		{"leading hyphen", "-abc", false},
		{"too long", strings.Repeat("a", MaxStackLen+1), false},
		{"unicode", "démo", false},
		{"unicode short", "ü", false},
		{"space inside", "my stack", false},
		{"trailing space", "demo ", false},
		{"leading space", " demo", false},
		{"dot", "a.b", false},
		{"slash", "a/b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateStack(tt.stack)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateStack(%q) = %v, want nil", tt.stack, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateStack(%q) = nil, want an error", tt.stack)
			}
			// Bad input must map to exit code 2, so it must be a UsageError.
			if !IsUsage(err) {
				t.Fatalf("ValidateStack(%q) error %T is not a UsageError", tt.stack, err)
			}
		})
	}
}

func TestValidateRegion(t *testing.T) {
	tests := []struct {
		region string
		ok     bool
	}{
		{"eu-west-3", true},
		{"us-east-1", true},
		{"us-gov-west-1", true},
		{"ap-southeast-2", true},
		{"ap-southeast-5", true},
		{"cn-northwest-1", true},
		{"us-isof-south-1", true},
		// The AWS European Sovereign Cloud region: 4 letters before the first hyphen.
		{"eusc-de-east-1", true},
		{"EU-WEST-3", false},
		{"euwest3", false},
		{"eu-west", false},
		{"", false},
		{"eu-west-3 ", false},
		{"eu-west-123", false},
		{"eu_west_3", false},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			err := ValidateRegion(tt.region)
			if tt.ok && err != nil {
				t.Fatalf("ValidateRegion(%q) = %v, want nil", tt.region, err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("ValidateRegion(%q) = nil, want an error", tt.region)
				}
				if !IsUsage(err) {
					t.Fatalf("ValidateRegion(%q) error %T is not a UsageError", tt.region, err)
				}
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string // substring of the error; "" means success
	}{
		{"nil", nil, nil, ""},
		{"bare IP becomes /32", []string{"198.51.100.7"}, []string{"198.51.100.7/32"}, ""},
		{"whitespace trimmed", []string{" 198.51.100.7/32\n"}, []string{"198.51.100.7/32"}, ""},
		{"network kept", []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, ""},
		{"whole internet accepted", []string{"0.0.0.0/0"}, []string{"0.0.0.0/0"}, ""},
		{"duplicates removed, order kept",
			[]string{"203.0.113.0/24", "198.51.100.7", "198.51.100.7/32", "203.0.113.0/24"},
			[]string{"203.0.113.0/24", "198.51.100.7/32"}, ""},
		// Host bits set is a typo; the error suggests the masked prefix.
		{"host bits set", []string{"198.51.100.7/24"}, nil, "198.51.100.0/24"},
		{"host bits set /8", []string{"10.1.2.3/8"}, nil, "10.0.0.0/8"},
		{"bare IPv6", []string{"2001:db8::1"}, nil, "IPv4"},
		{"IPv6 prefix", []string{"2001:db8::/32"}, nil, "IPv4"},
		{"zoned IPv6", []string{"fe80::1%eth0"}, nil, "fe80::1%eth0"},
		{"IPv4-mapped IPv6", []string{"::ffff:198.51.100.7"}, nil, "IPv4"},
		{"garbage", []string{"not-an-ip"}, nil, "not a CIDR"},
		{"empty string", []string{""}, nil, "not a CIDR"},
		{"prefix too long", []string{"198.51.100.7/33"}, nil, "not a CIDR"},
		{"one bad among good", []string{"198.51.100.7", "nope"}, nil, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCIDRs(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseCIDRs(%q) = %v, want an error", tt.in, got)
				}
				if !IsUsage(err) {
					t.Errorf("error %T is not a UsageError", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCIDRs(%q) = %v", tt.in, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ParseCIDRs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateInstanceType(t *testing.T) {
	tests := []struct {
		typ string
		ok  bool
	}{
		{"t2.micro", true},
		{"t4g.small", true},
		{"m7i-flex.large", true},
		{"c5.24xlarge", true},
		{"", false},
		{"t2", false},
		{"T2.micro", false},
		{"t2.micro.extra", false},
		{"t2 .micro", false},
		{".micro", false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			err := ValidateInstanceType(tt.typ)
			if tt.ok && err != nil {
				t.Fatalf("ValidateInstanceType(%q) = %v, want nil", tt.typ, err)
			}
			if !tt.ok && !IsUsage(err) {
				t.Fatalf("ValidateInstanceType(%q) = %v, want a UsageError", tt.typ, err)
			}
		})
	}
}

func TestConfigValidateDefaults(t *testing.T) {
	c := Config{Stack: "demo", StateDir: t.TempDir(), AllowCIDRs: []string{"198.51.100.7", "198.51.100.7/32"}}
	if err := c.Validate(true); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.InstanceType != DefaultInstanceType {
		t.Errorf("InstanceType = %q, want default %q", c.InstanceType, DefaultInstanceType)
	}
	if c.MLflowVersion != cloudinit.DefaultMLflowVersion {
		t.Errorf("MLflowVersion = %q, want default %q", c.MLflowVersion, cloudinit.DefaultMLflowVersion)
	}
	if c.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v, want default %v", c.Timeout, DefaultTimeout)
	}
	// CIDRs are normalised in place when needed.
	if fmt.Sprint(c.AllowCIDRs) != "[198.51.100.7/32]" {
		t.Errorf("AllowCIDRs = %q, want [198.51.100.7/32]", c.AllowCIDRs)
	}
	// Writers default to io.Discard so commands never write to a nil writer.
	if c.Out != io.Discard || c.Log != io.Discard {
		t.Errorf("Out/Log not defaulted to io.Discard")
	}
}

func TestConfigValidateKeepsExplicitValues(t *testing.T) {
	c := Config{Stack: "demo", StateDir: "/x", InstanceType: "t3.small", MLflowVersion: "3.5.0", Timeout: time.Minute}
	if err := c.Validate(false); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.InstanceType != "t3.small" || c.MLflowVersion != "3.5.0" || c.Timeout != time.Minute {
		t.Errorf("explicit values overwritten: %+v", c)
	}
}

func TestConfigValidateRejects(t *testing.T) {
	valid := func() Config { return Config{Stack: "demo", StateDir: "/tmp/state"} }
	tests := []struct {
		name     string
		mutate   func(*Config)
		needCIDR bool
		wantMsg  string
	}{
		{"bad stack", func(c *Config) { c.Stack = "Demo" }, false, "stack name"},
		{"bad region", func(c *Config) { c.Region = "EU-WEST-3" }, false, "region"},
		{"bad instance type", func(c *Config) { c.InstanceType = "micro" }, false, "instance type"},
		{"mlflow latest", func(c *Config) { c.MLflowVersion = "latest" }, false, "--mlflow-version"},
		{"mlflow two parts", func(c *Config) { c.MLflowVersion = "3.5" }, false, "--mlflow-version"},
		// cloudinit refuses releases before 3.5.0 (no --allowed-hosts); that must be
		// caught here, before any AWS resource is created, not at instance launch.
		{"mlflow too old", func(c *Config) { c.MLflowVersion = "3.4.0" }, false, "3.4.0"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, false, "--timeout"},
		{"missing state dir", func(c *Config) { c.StateDir = "" }, false, "state directory"},
		{"bad cidr", func(c *Config) { c.AllowCIDRs = []string{"198.51.100.7/24"} }, true, "host bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate(tt.needCIDR)
			if err == nil {
				t.Fatalf("Validate accepted %+v", c)
			}
			if !IsUsage(err) {
				t.Errorf("error %T is not a UsageError", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// Versions are compared as numbers, not strings: 3.10.0 is newer than 3.5.0.
func TestConfigValidateMLflowVersions(t *testing.T) {
	tests := []struct {
		version string
		ok      bool
	}{
		{"3.5.0", true},
		{"3.10.0", true},
		{"4.0.0", true},
		{"10.0.0", true},
		{cloudinit.DefaultMLflowVersion, true},
		{"3.4.9", false},
		{"2.22.0", false},
		{"3.5.0rc1", false},
		{"v3.5.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			c := Config{Stack: "demo", StateDir: "/tmp/state", MLflowVersion: tt.version}
			err := c.Validate(false)
			if tt.ok && err != nil {
				t.Fatalf("Validate rejected %s: %v", tt.version, err)
			}
			if !tt.ok && !IsUsage(err) {
				t.Fatalf("Validate(%s) = %v, want a UsageError", tt.version, err)
			}
		})
	}
}

// CIDRs are only checked when the command needs them (down/env do not).
func TestConfigValidateSkipsCIDRsWhenNotNeeded(t *testing.T) {
	c := Config{Stack: "demo", StateDir: "/tmp/state", AllowCIDRs: []string{"garbage"}}
	if err := c.Validate(false); err != nil {
		t.Fatalf("Validate(false) = %v, want nil", err)
	}
}

func TestNamesFor(t *testing.T) {
	n := NamesFor("demo", "123456789012", "eu-west-3")
	want := Names{
		Stack:         "demo",
		User:          "mlstack-demo",
		Role:          "mlstack-demo-server",
		Profile:       "mlstack-demo-server",
		Bucket:        "mlstack-demo-123456789012-eu-west-3",
		SecurityGroup: "mlstack-demo",
		KeyPair:       "mlstack-demo",
		Instance:      "mlstack-demo",
		Policy:        "mlstack-bucket",
	}
	if n != want {
		t.Errorf("NamesFor = %+v\nwant        %+v", n, want)
	}
	if err := n.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// bucketNameRe is S3's general purpose bucket naming rule: 3-63 characters of
// lowercase letters, digits, dots and hyphens, starting and ending with a
// letter or digit.
var bucketNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func checkBucketName(b string) error {
	switch {
	case !bucketNameRe.MatchString(b):
		return fmt.Errorf("does not match %s", bucketNameRe)
	case strings.Contains(b, ".."):
		return fmt.Errorf("has adjacent dots")
	case looksLikeIP(b):
		return fmt.Errorf("is formatted as an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return fmt.Errorf("starts with reserved %q", p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return fmt.Errorf("ends with reserved %q", s)
		}
	}
	return nil
}

func looksLikeIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// Every valid stack name must fit every derived AWS name in every region:
// MaxStackLen is the promise that Check never fails after ValidateStack passed.
func TestNamesFitAWSLimits(t *testing.T) {
	// The longest region names in use (commercial, GovCloud, China, EUSC, ISO).
	regions := []string{
		"ap-southeast-5", "ap-northeast-3", "us-gov-west-1", "cn-northwest-1",
		"eusc-de-east-1", "us-isof-south-1", "eu-isoe-west-1", "us-isob-east-1",
	}
	var stacks []string
	for l := 1; l <= MaxStackLen; l++ {
		stacks = append(stacks,
			strings.Repeat("z", l),                // letters only
			("a" + strings.Repeat("9", l))[:l],    // trailing digits
			("a" + strings.Repeat("-b", l))[:l],   // hyphens (invalid when it ends in one)
			("m" + strings.Repeat("l1-x", l))[:l], // mixed
		)
	}
	checked := 0
	for _, region := range regions {
		for _, stack := range stacks {
			if ValidateStack(stack) != nil {
				continue // only names the CLI accepts matter
			}
			checked++
			n := NamesFor(stack, "123456789012", region)
			if err := n.Check(); err != nil {
				t.Errorf("stack %q region %q: Check: %v", stack, region, err)
			}
			if len(n.Bucket) > 63 {
				t.Errorf("bucket %q is %d chars", n.Bucket, len(n.Bucket))
			}
			if err := checkBucketName(n.Bucket); err != nil {
				t.Errorf("bucket %q %v", n.Bucket, err)
			}
			// IAM user, role and instance profile names: at most 64 characters.
			for _, iam := range []string{n.User, n.Role, n.Profile} {
				if len(iam) > 64 {
					t.Errorf("IAM name %q is %d chars", iam, len(iam))
				}
			}
		}
	}
	// Guard against the generator silently producing nothing valid.
	if checked < len(regions)*MaxStackLen {
		t.Fatalf("only %d stack/region pairs checked", checked)
	}
}

// Check is the safety net when names would not fit; it must say so as a UsageError.
func TestNamesCheckRejectsLongNames(t *testing.T) {
	tests := []struct {
		name string
		n    Names
	}{
		{"bucket", NamesFor(strings.Repeat("a", 40), "123456789012", "ap-southeast-5")},
		{"role", Names{Stack: "x", Bucket: "b", User: "u", Role: strings.Repeat("r", 65)}},
		{"user", Names{Stack: "x", Bucket: "b", User: strings.Repeat("u", 65), Role: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.n.Check(); !IsUsage(err) {
				t.Fatalf("Check() = %v, want a UsageError", err)
			}
		})
	}
}
