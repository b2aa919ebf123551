package provision

import (
	"fmt"

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
	return nil, &UsageError{Msg: fmt.Sprintf("policy %q: give operator or sweeper (see `mlstack policy --help`)", name)}
}
