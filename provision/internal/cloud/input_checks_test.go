package cloud_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

func TestLookalikeError(t *testing.T) {
	t.Parallel()
	err := cloud.Lookalike{ID: "i-0abc", Why: "its key pair is not the stack's"}.Error("demo")
	var no *cloud.NotOwnedError
	if !errors.As(err, &no) || no.Kind != "instance" || no.Name != "i-0abc" || no.Stack != "demo" {
		t.Fatalf("error = %#v, want a notOwnedError for instance i-0abc of demo", err)
	}
	if !strings.Contains(err.Error(), "i-0abc is tagged") || !strings.Contains(err.Error(), "its key pair is not the stack's") {
		t.Errorf("error text %q does not say what differs", err)
	}
}
