package provision

import (
	"fmt"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/templates"
)

// PolicyNames are the IAM policies `mlstack policy` prints: what the
// principal that runs mlstack needs (operator), and what the scheduled
// `down --expired` needs (sweeper).
var PolicyNames = []string{"operator", "sweeper"}

// OperatorPolicy is the IAM policy document called name, as
// `aws iam create-policy --policy-document` takes it. The documents are
// embedded files (templates/policies), so the binary prints exactly what
// the tests proved.
func OperatorPolicy(name string) ([]byte, error) {
	for _, n := range PolicyNames {
		if n == name {
			b, err := templates.Policies.ReadFile("policies/" + name + ".json")
			if err != nil {
				return nil, fmt.Errorf("reading the %s policy: %w", name, err)
			}
			return b, nil
		}
	}
	if name == "" {
		return nil, &UsageError{Msg: "policy needs the policy's name: operator or sweeper (see `mlstack policy --help`)"}
	}
	return nil, &UsageError{Msg: fmt.Sprintf("policy %q: give operator or sweeper (see `mlstack policy --help`)", name)}
}

// DeniedHint is the line that follows an error AWS refused for want of a
// permission (AccessDenied, EC2's UnauthorizedOperation): which policy
// grants what mlstack calls. Empty for any other error.
func DeniedHint(err error) string {
	if !cloud.HasCode(err, "AccessDenied", "AccessDeniedException", "UnauthorizedOperation") {
		return ""
	}
	return "the AWS identity in use may not make that call: `mlstack policy operator` prints the IAM policy " +
		"every command needs (`mlstack policy sweeper`: only `down --expired`); see docs/policy.md"
}
