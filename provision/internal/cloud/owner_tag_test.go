package cloud_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud"
)

// ownerARNs are principals as sts:GetCallerIdentity names them.
var ownerARNs = []struct{ name, arn, want string }{
	{"root", "arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"},
	{"SSO role session", "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jane.doe@example.com",
		"arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123abcd"},
	{"user with a path", "arn:aws:iam::123456789012:user/dept/ci/deployer", "arn:aws:iam::123456789012:user/dept/ci/deployer"},
	{"user with a comma", "arn:aws:iam::123456789012:user/a,b", "arn:aws:iam::123456789012:user/a_b sha256:"},
	{"user a_b (not a,b)", "arn:aws:iam::123456789012:user/a_b", "arn:aws:iam::123456789012:user/a_b"},
	{"path with other characters", "arn:aws:iam::123456789012:user/team!#$/x", "arn:aws:iam::123456789012:user/team___/x sha256:"},
	{"very long", "arn:aws:iam::123456789012:user/" + strings.Repeat("p/", 120) + "deployer", "arn:aws:iam::123456789012:user/p/p/p/"},
	{"very long, another", "arn:aws:iam::123456789012:user/" + strings.Repeat("p/", 120) + "deployer2", "arn:aws:iam::123456789012:user/p/p/p/"},
}

// TestOwnerTagValue: every principal's owner value is one IAM, S3, SSM and
// RDS accept, the same principal always maps the same, two never share one,
// and values written by earlier versions (the plain ARN) still match.
func TestOwnerTagValue(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, c := range ownerARNs {
		principal := cloud.PrincipalOf(c.arn)
		v := cloud.OwnerTagValue(principal)
		if !strings.HasPrefix(v, c.want) {
			t.Errorf("%s: %q, want it to start %q", c.name, v, c.want)
		}
		for _, svc := range []string{"iam", "s3", "ssm", "rds", "ec2"} {
			if err := awsmodel.TagValue(svc, 1, v); err != nil {
				t.Errorf("%s: %s refuses %q: %v", c.name, svc, v, err)
			}
		}
		if utf8.RuneCountInString(v) > 256 || cloud.OwnerTagValue(v) != v || v != cloud.OwnerTagValue(principal) {
			t.Errorf("%s: %q is not a stable value of at most 256 characters", c.name, v)
		}
		if other, dup := seen[v]; dup {
			t.Errorf("%s and %s share the owner value %q", c.name, other, v)
		}
		seen[v] = c.name
		if !cloud.SameOwner(v, principal) || !cloud.SameOwner(principal, principal) {
			t.Errorf("%s: the value (or an earlier version's plain ARN) does not match its principal", c.name)
		}
	}
	if cloud.SameOwner("", "arn:aws:iam::123456789012:root") || cloud.SameOwner(cloud.OwnerTagValue("arn:aws:iam::123456789012:user/a,b"), "arn:aws:iam::123456789012:user/a_b") {
		t.Error("SameOwner matches another principal")
	}
}
