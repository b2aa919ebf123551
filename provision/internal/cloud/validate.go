package cloud

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/region"
)

// MaxStackLen keeps every derived AWS name within its limit (the bucket's 63).
const MaxStackLen = 24

// maxTTL bounds --ttl: a demo stack that should live longer is not a demo.
const maxTTL = 90 * 24 * time.Hour

var (
	stackRe        = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	versionRe      = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
)

// ValidateStack checks a stack name: lowercase letters, digits and single
// hyphens, starting with a letter, short enough for every derived name.
func ValidateStack(s string) error {
	switch {
	case s == "":
		return Usagef("missing stack name: pass --stack NAME or set MLSTACK_STACK")
	case len(s) > MaxStackLen:
		return Usagef("stack name %q is %d characters; at most %d fit every derived AWS name", s, len(s), MaxStackLen)
	case !stackRe.MatchString(s):
		return Usagef("stack name %q: use lowercase letters, digits and hyphens, starting with a letter", s)
	case strings.HasSuffix(s, "-") || strings.Contains(s, "--"):
		return Usagef("stack name %q: no trailing or doubled hyphens", s)
	}
	return nil
}

// ValidateRegion checks the shape of a region name (eu-west-3, us-gov-west-1),
// and refuses the ISO partitions' regions, where mlstack would take
// commercial AWS's endpoints, ARNs and image publisher for theirs.
func ValidateRegion(r string) error {
	if !region.Valid(r) {
		return Usagef("region %q is not a valid AWS region name (like eu-west-3)", r)
	}
	if p := region.Isolated(r); p != "" {
		return Usagef("mlstack does not support the ISO partitions (%s is in %s): use a region of aws, aws-cn, aws-us-gov or aws-eusc", r, p)
	}
	return nil
}

// ValidateInstanceType checks the shape of an instance type; AWS confirms it exists.
func ValidateInstanceType(t string) error {
	if !instanceTypeRe.MatchString(t) {
		return Usagef("instance type %q is not like t2.micro", t)
	}
	return nil
}

// ValidateMLflowVersion wants an exact release that has --allowed-hosts,
// which the bootstrap relies on (3.5.0 or newer).
func ValidateMLflowVersion(v string) error {
	if !versionRe.MatchString(v) {
		return Usagef("--mlflow-version %q: give an exact version like %s", v, cloudinit.DefaultMLflowVersion)
	}
	var major, minor, patch int
	fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch)
	if major < 3 || (major == 3 && minor < 5) {
		return Usagef("--mlflow-version %s: mlstack needs MLflow 3.5.0 or newer", v)
	}
	return nil
}

// ParseTTL reads a TTL (see ParseDuration), at most maxTTL; "" is no TTL.
func ParseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := ParseDuration("--ttl", s)
	if err == nil && v > maxTTL {
		err = Usagef("--ttl %s: give at most %dd", s, int(maxTTL.Hours()/24))
	}
	if err != nil {
		return 0, err
	}
	return v, nil
}

// ParseDuration reads a positive duration flag: a Go duration ("90m",
// "4h", "1h30m") or whole days ("2d"). Its error names the flag and echoes
// what was typed.
func ParseDuration(flag, s string) (time.Duration, error) {
	bad := Usagef("%s %s: use a duration like 90m, 4h or 2d", flag, ShellWord(s))
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err != nil || fmt.Sprint(n) != d || n <= 0 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, bad
	}
	return v, nil
}

// FormatDuration writes d as ParseDuration reads it, briefly: 2d, 90m, 1h30m.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ValidateOutput accepts table (the default for "") and json.
func ValidateOutput(o *string) error {
	switch *o {
	case "":
		*o = "table"
	case "table", "json":
	default:
		return Usagef("--output %q: use table or json", *o)
	}
	return nil
}

// ValidateTimeout fills the default for 0 and refuses a negative one.
func ValidateTimeout(d *time.Duration, def time.Duration) error {
	if *d < 0 {
		return Usagef("--timeout must be positive")
	}
	if *d == 0 {
		*d = def
	}
	return nil
}
