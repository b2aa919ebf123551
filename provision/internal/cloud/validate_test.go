package cloud_test

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/internal/cloud"
)

func TestValidateStack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stack string
		ok    bool
	}{
		{"simple", "demo", true},
		{"one letter", "a", true},
		{"digit and hyphen", "ml-1", true},
		{"max length", strings.Repeat("a", cloud.MaxStackLen), true},
		{"max length mixed", "a" + strings.Repeat("b1-", 7) + "cd", true},
		{"empty", "", false},
		{"uppercase", "Demo", false},
		{"leading digit", "1abc", false},
		{"underscore", "a_b", false},
		{"doubled hyphen", "a--b", false},
		{"trailing hyphen", "abc-", false},
		{"leading hyphen", "-abc", false},
		{"too long", strings.Repeat("a", cloud.MaxStackLen+1), false},
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
			err := cloud.ValidateStack(tt.stack)
			if tt.ok {
				if err != nil {
					t.Fatalf("validateStack(%q) = %v, want nil", tt.stack, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validateStack(%q) = nil, want an error", tt.stack)
			}
			// Bad input must map to exit code 2, so it must be a UsageError.
			if !cloud.IsUsage(err) {
				t.Fatalf("validateStack(%q) error %T is not a UsageError", tt.stack, err)
			}
		})
	}
}

func TestValidateRegion(t *testing.T) {
	t.Parallel()
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
		{"us-isof-south-1", false}, // an ISO partition: see TestValidateRegionISO
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
			err := cloud.ValidateRegion(tt.region)
			if tt.ok && err != nil {
				t.Fatalf("validateRegion(%q) = %v, want nil", tt.region, err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("validateRegion(%q) = nil, want an error", tt.region)
				}
				if !cloud.IsUsage(err) {
					t.Fatalf("validateRegion(%q) error %T is not a UsageError", tt.region, err)
				}
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
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
			got, err := cloud.ParseCIDRs(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("parseCIDRs(%q) = %v, want an error", tt.in, got)
				}
				if !cloud.IsUsage(err) {
					t.Errorf("error %T is not a UsageError", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCIDRs(%q) = %v", tt.in, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("parseCIDRs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateInstanceType(t *testing.T) {
	t.Parallel()
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
			err := cloud.ValidateInstanceType(tt.typ)
			if tt.ok && err != nil {
				t.Fatalf("validateInstanceType(%q) = %v, want nil", tt.typ, err)
			}
			if !tt.ok && !cloud.IsUsage(err) {
				t.Fatalf("validateInstanceType(%q) = %v, want a UsageError", tt.typ, err)
			}
		})
	}
}

// Versions are compared as numbers, not strings: 3.10.0 is newer than 3.5.0.
func TestValidateMLflowVersions(t *testing.T) {
	t.Parallel()
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
			err := cloud.ValidateMLflowVersion(tt.version)
			if tt.ok && err != nil {
				t.Fatalf("rejected %s: %v", tt.version, err)
			}
			if !tt.ok && !cloud.IsUsage(err) {
				t.Fatalf("validateMLflowVersion(%s) = %v, want a UsageError", tt.version, err)
			}
		})
	}
}

func TestParseTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true},
		{"90m", 90 * time.Minute, true},
		{"4h", 4 * time.Hour, true},
		{"2d", 48 * time.Hour, true},
		{"90d", 90 * 24 * time.Hour, true},
		{"91d", 0, false},
		{"0d", 0, false},
		{"-1h", 0, false},
		{"4", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"02d", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cloud.ParseTTL(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("parseTTL(%q) = %v, %v", tt.in, got, err)
			}
			if err != nil && !cloud.IsUsage(err) {
				t.Errorf("error %T is not a UsageError", err)
			}
		})
	}
}

func TestNamesFor(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	want := cloud.Names{
		Stack:           "demo",
		User:            "mlstack-demo",
		Role:            "mlstack-demo-server",
		Profile:         "mlstack-demo-server",
		Bucket:          "mlstack-demo-123456789012-eu-west-3-an",
		GlobalBucket:    "mlstack-demo-123456789012-eu-west-3",
		SecurityGroup:   "mlstack-demo",
		KeyPair:         "mlstack-demo",
		Instance:        "mlstack-demo",
		Policy:          "mlstack-bucket",
		DB:              "mlstack-demo",
		DBSubnetGroup:   "mlstack-demo",
		DBSecurityGroup: "mlstack-demo.db",
		Account:         "123456789012",
		Region:          "eu-west-3",
	}
	if n != want {
		t.Errorf("NamesFor = %+v\nwant        %+v", n, want)
	}
	if err := n.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// Every valid stack name must fit every derived AWS name in every region:
// maxStackLen is the promise that Check never fails after ValidateStack passed.
func TestNamesFitAWSLimits(t *testing.T) {
	t.Parallel()
	// The longest region names in use (commercial, GovCloud, China, EUSC, ISO).
	regions := []string{
		"ap-southeast-5", "ap-northeast-3", "us-gov-west-1", "cn-northwest-1",
		"eusc-de-east-1", "us-isof-south-1", "eu-isoe-west-1", "us-isob-east-1",
	}
	var stacks []string
	for l := 1; l <= cloud.MaxStackLen; l++ {
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
			if cloud.ValidateStack(stack) != nil {
				continue // only names the CLI accepts matter
			}
			checked++
			n := cloud.NamesFor(stack, "123456789012", region)
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
	if checked < len(regions)*cloud.MaxStackLen {
		t.Fatalf("only %d stack/region pairs checked", checked)
	}
}

// Check is the safety net when names would not fit; it must say so as a UsageError.
func TestNamesCheckRejectsLongNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    cloud.Names
	}{
		{"bucket", cloud.NamesFor(strings.Repeat("a", 40), "123456789012", "ap-southeast-5")},
		{"role", cloud.Names{Stack: "x", Bucket: "b", User: "u", Role: strings.Repeat("r", 65)}},
		{"user", cloud.Names{Stack: "x", Bucket: "b", User: strings.Repeat("u", 65), Role: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.n.Check(); !cloud.IsUsage(err) {
				t.Fatalf("Check() = %v, want a UsageError", err)
			}
		})
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

// TestValidateRegionISO: the ISO partitions' regions are refused by name,
// before anything is asked of AWS; their neighbours are not.
func TestValidateRegionISO(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ region, partition string }{
		{"us-iso-east-1", "aws-iso"},
		{"us-iso-west-1", "aws-iso"},
		{"us-isob-east-1", "aws-iso-b"},
		{"us-isob-west-1", "aws-iso-b"},
		{"eu-isoe-west-1", "aws-iso-e"},
		{"us-isof-east-1", "aws-iso-f"},
		{"us-isof-south-1", "aws-iso-f"},
		{"us-gov-west-1", ""},
		{"us-east-1", ""},
		{"eu-west-3", ""},
		{"eusc-de-east-1", ""},
	} {
		err := cloud.ValidateRegion(c.region)
		want := "mlstack does not support the ISO partitions (" + c.region + " is in " + c.partition + ")"
		switch {
		case c.partition == "" && err != nil:
			t.Errorf("%s: %v", c.region, err)
		case c.partition != "" && (!cloud.IsUsage(err) || !strings.Contains(fmt.Sprint(err), want)):
			t.Errorf("%s: %v, want a usage error %q", c.region, err, want)
		}
	}
}
