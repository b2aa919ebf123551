// Package provision creates, converges, inspects and deletes an mlstack stack:
// one file per AWS resource (find / ensure / delete over a narrow interface of
// the SDK calls it uses) and one file per lifecycle command.
package provision

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
)

// Version is stamped into the mlstack:version tag.
var Version = "0.1.0"

// Tag keys. Tags in AWS are the source of truth for what a stack owns.
const (
	TagStack     = "mlstack:stack"
	TagCreatedAt = "mlstack:created-at"
	TagExpiresAt = "mlstack:expires-at"
	TagVersion   = "mlstack:version"
	TagRegion    = "mlstack:region"
)

// Defaults.
const (
	DefaultInstanceType = "t2.micro"
	DefaultTimeout      = 15 * time.Minute
	MaxStackLen         = 24
	mlflowPort          = 5000
	sshPort             = 22
	mlflowUser          = "admin"
	iamPath             = "/mlstack/"
)

// Config is everything a lifecycle command needs; cmd/mlstack fills it from flags.
type Config struct {
	Stack         string
	Region        string // empty: the AWS default chain decides
	Profile       string
	StateDir      string // root of the local state; one folder per stack below it
	AllowCIDRs    []string
	InstanceType  string
	MLflowVersion string
	Timeout       time.Duration
	NoWait        bool
	DryRun        bool
	Yes           bool
	// TTL, when set, tags the stack with mlstack:expires-at = now + TTL.
	TTL time.Duration
	// Output is "table" (default) or "json" for up and status.
	Output string
	// SSH opens tcp 22 to AllowCIDRs; up without it closes the port again.
	SSH bool

	// Out receives data (env lines, status tables); Log receives progress.
	Out io.Writer
	Log io.Writer

	// Calls, when set, records every AWS operation made (tests, benchmarks).
	Calls *CallLog
	// DetectIP finds the caller's public IP when no --allow-cidr is given;
	// nil uses the default checker. Tests replace it.
	DetectIP func() (netip.Addr, error)
	// HealthURL overrides the URL polled for /health (tests only).
	HealthURL string
}

// MaxTTL bounds --ttl: a demo stack that should live longer is not a demo.
const MaxTTL = 90 * 24 * time.Hour

// ParseTTL reads a TTL as a Go duration ("90m", "4h") or in days ("2d").
func ParseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err != nil || fmt.Sprint(n) != d || n <= 0 {
			return 0, usagef("--ttl %q: use a duration like 90m, 4h or 2d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, usagef("--ttl %q: use a duration like 90m, 4h or 2d", s)
	}
	return v, nil
}

// UsageError is bad input, found before anything is created (exit code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

var (
	stackRe        = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	regionRe       = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
	instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	versionRe      = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
)

// ValidateStack checks a stack name: lowercase letters, digits and single
// hyphens, starting with a letter, short enough for every derived name.
func ValidateStack(s string) error {
	switch {
	case s == "":
		return usagef("missing stack name: pass --stack NAME or set MLSTACK_STACK")
	case len(s) > MaxStackLen:
		return usagef("stack name %q is %d characters; at most %d fit every derived AWS name", s, len(s), MaxStackLen)
	case !stackRe.MatchString(s):
		return usagef("stack name %q: use lowercase letters, digits and hyphens, starting with a letter", s)
	case strings.HasSuffix(s, "-") || strings.Contains(s, "--"):
		return usagef("stack name %q: no trailing or doubled hyphens", s)
	}
	return nil
}

// ValidateRegion checks the shape of a region name (eu-west-3, us-gov-west-1).
func ValidateRegion(r string) error {
	if !regionRe.MatchString(r) {
		return usagef("region %q is not a valid AWS region name (like eu-west-3)", r)
	}
	return nil
}

// ParseCIDRs checks and normalises --allow-cidr values. A bare IP becomes a
// /32 (or /128); host bits set is an error because it is usually a typo.
func ParseCIDRs(in []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, raw := range in {
		s := strings.TrimSpace(raw)
		var p netip.Prefix
		if a, err := netip.ParseAddr(s); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		} else {
			p, err = netip.ParsePrefix(s)
			if err != nil {
				return nil, usagef("--allow-cidr %q is not a CIDR like 198.51.100.7/32", raw)
			}
		}
		if p.Addr().Zone() != "" {
			return nil, usagef("--allow-cidr %q: zoned addresses are not allowed", raw)
		}
		if p.Masked() != p {
			return nil, usagef("--allow-cidr %q has host bits set; did you mean %s?", raw, p.Masked())
		}
		if !p.Addr().Is4() {
			return nil, usagef("--allow-cidr %q: only IPv4 CIDRs are supported (the default VPC has no IPv6 route)", raw)
		}
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, p.String())
		}
	}
	return out, nil
}

// ValidateInstanceType checks the shape of an instance type; AWS confirms it exists.
func ValidateInstanceType(t string) error {
	if !instanceTypeRe.MatchString(t) {
		return usagef("instance type %q is not like t2.micro", t)
	}
	return nil
}

// Validate checks everything that can be checked without AWS and fills defaults.
func (c *Config) Validate(needCIDRs bool) error {
	if err := ValidateStack(c.Stack); err != nil {
		return err
	}
	if c.Region != "" {
		if err := ValidateRegion(c.Region); err != nil {
			return err
		}
	}
	if c.InstanceType == "" {
		c.InstanceType = DefaultInstanceType
	}
	if err := ValidateInstanceType(c.InstanceType); err != nil {
		return err
	}
	if c.MLflowVersion == "" {
		c.MLflowVersion = cloudinit.DefaultMLflowVersion
	}
	if !versionRe.MatchString(c.MLflowVersion) {
		return usagef("--mlflow-version %q: give an exact version like %s", c.MLflowVersion, cloudinit.DefaultMLflowVersion)
	}
	var major, minor, patch int
	fmt.Sscanf(c.MLflowVersion, "%d.%d.%d", &major, &minor, &patch)
	if major < 3 || (major == 3 && minor < 5) {
		// --allowed-hosts, which the bootstrap relies on, arrived in 3.5.
		return usagef("--mlflow-version %s: mlstack needs MLflow 3.5.0 or newer", c.MLflowVersion)
	}
	if c.Timeout < 0 {
		return usagef("--timeout must be positive")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.StateDir == "" {
		return usagef("no state directory: pass --state-dir or set MLSTACK_STATE_DIR")
	}
	if c.TTL < 0 || c.TTL > MaxTTL {
		return usagef("--ttl %s: give at most %dd", c.TTL, int(MaxTTL.Hours()/24))
	}
	switch c.Output {
	case "":
		c.Output = "table"
	case "table", "json":
	default:
		return usagef("--output %q: use table or json", c.Output)
	}
	if needCIDRs {
		cidrs, err := ParseCIDRs(c.AllowCIDRs)
		if err != nil {
			return err
		}
		c.AllowCIDRs = cidrs
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// Names are every AWS name derived from a stack.
type Names struct {
	Stack, User, Role, Profile, Bucket, SecurityGroup, KeyPair, Instance, Policy string
}

// NamesFor derives the resource names. The bucket carries account and region
// because bucket names are global across all of AWS.
func NamesFor(stack, account, region string) Names {
	base := "mlstack-" + stack
	return Names{
		Stack:         stack,
		User:          base,
		Role:          base + "-server",
		Profile:       base + "-server",
		Bucket:        fmt.Sprintf("%s-%s-%s", base, account, region),
		SecurityGroup: base,
		KeyPair:       base,
		Instance:      base,
		Policy:        "mlstack-bucket",
	}
}

// Check verifies the derived names fit AWS limits (bucket 63, IAM user 64, role 64).
func (n Names) Check() error {
	if len(n.Bucket) > 63 {
		return usagef("bucket name %q would be %d characters (limit 63): choose a shorter stack name", n.Bucket, len(n.Bucket))
	}
	if len(n.Role) > 64 || len(n.User) > 64 {
		return usagef("IAM names for stack %q would exceed 64 characters", n.Stack)
	}
	return nil
}
