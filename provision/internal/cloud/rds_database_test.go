package cloud_test

import (
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

func TestValidateDatabase(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ engine, class, stack, want string }{
		{"mysql", "", "demo", "--db \"mysql\""},
		{"postgres", "t3.micro", "demo", "not an RDS instance class"},
		{"sqlite", "db.t3.micro", "demo", "--db-class is for --db postgres"},
		{"postgres", "", "a--b", "cannot name an RDS database"},
		{"postgres", "", "a-", "cannot name an RDS database"},
		{"postgres", "db.t3.micro", "a-b", ""},
		{"", "", "a--b", ""},
	} {
		err := cloud.ValidateDatabase(c.engine, c.class, c.stack)
		if (c.want == "") != (err == nil) || (err != nil && (!cloud.IsUsage(err) || !strings.Contains(err.Error(), c.want))) {
			t.Errorf("validateDatabase(%q, %q, %q) = %v, want %q", c.engine, c.class, c.stack, err, c.want)
		}
	}
}
