package awsmodel_test

import (
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

func TestSecurityGroupText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		field, value string
		ok           bool
	}{
		{"GroupName", "mlstack-demo", true},
		{"GroupDescription", "mlstack demo: PostgreSQL from the server group only", true},
		{"GroupDescription", "mlstack demo: PostgreSQL from the server's group only", false},
		{"Description", "office (10.0.0.0/8) #1, [a]+{b}=&;!$*@", true},
		{"Description", "café", false},
		{"Description", "a–b", false}, // a non-ASCII dash
		{"Description", "tab\there", false},
		{"GroupDescription", strings.Repeat("a", 255), true},
		{"GroupDescription", strings.Repeat("a", 256), false},
	} {
		err := awsmodel.SecurityGroupText(c.field, c.value)
		if (err == nil) != c.ok {
			t.Errorf("%s %q: %v, want ok=%v", c.field, c.value, err, c.ok)
		}
		if e, _ := err.(*awsmodel.Error); err != nil && (e == nil || e.Code != "InvalidParameterValue" || !strings.Contains(e.Message, c.field)) {
			t.Errorf("%s %q: %v, want InvalidParameterValue naming the field", c.field, c.value, err)
		}
	}
}

func TestTagValue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		value string
		ok    bool
	}{
		{"arn:aws:iam::123456789012:root", true},
		{"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jane.doe@example.com", true},
		{"arn:aws:iam::123456789012:user/dept/ci/deployer", true},
		{"arn:aws:iam::123456789012:user/a,b", false},
		{"Zoë Ünïcode 名前 +=", true},
		{"a#b", false},
		{strings.Repeat("é", 256), true},
		{strings.Repeat("a", 257), false},
	} {
		for _, svc := range []string{"iam", "s3", "ssm", "rds"} {
			err := awsmodel.TagValue(svc, 1, c.value)
			if (err == nil) != c.ok {
				t.Errorf("%s %q: %v, want ok=%v", svc, c.value, err, c.ok)
			}
		}
		if err := awsmodel.TagValue("ec2", 1, c.value); err != nil {
			t.Errorf("ec2 %q: %v, EC2's tag values are looser", c.value, err)
		}
	}
	want := map[string]string{"iam": "ValidationError", "s3": "InvalidTag", "ssm": "ValidationException", "rds": "InvalidParameterValue"}
	for svc, code := range want {
		if e, _ := awsmodel.TagValue(svc, 1, "a,b").(*awsmodel.Error); e == nil || e.Code != code {
			t.Errorf("%s: %v, want %s", svc, e, code)
		}
	}
}
