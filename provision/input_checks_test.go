package provision

// Input and message checks that need no AWS: user names, the exported
// Hint, and the look-alike instance's error.

import (
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

func TestValidateUserName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		want string // "" for valid, else a part of the usage error
	}{
		{"alice", ""},
		{"a.b_c@example-1", ""},
		{"9lives", ""},
		{strings.Repeat("a", 64), ""},
		{"", "missing user name"},
		{mlflowUser, "the server's admin login"},
		{strings.Repeat("a", 65), "1-64 of"},
		{"-alice", "starting with a letter or digit"},
		{"alice smith", "1-64 of"},
		{"alice;rm", "1-64 of"},
		{"élise", "1-64 of"},
	} {
		err := validateUserName(tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("validateUserName(%q) = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !cloud.IsUsage(err) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("validateUserName(%q) = %v, want a usage error with %q", tt.name, err, tt.want)
		}
	}
}

func TestHintExported(t *testing.T) {
	t.Parallel()
	got := Hint(Stack{Name: "demo", StateDir: "/tmp/my state"}, cloud.AWS{Region: "eu-west-3", Profile: "dev"}, "down", "--yes")
	want := "mlstack down --stack demo --region eu-west-3 --profile dev --state-dir '/tmp/my state' --yes"
	if got != want {
		t.Errorf("Hint = %s\nwant   %s", got, want)
	}
}
