package cloudfake

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel/trim"
)

// TestModelsCoverFake: every AWS operation the fake answers is one whose
// rules awsmodel checks (trim.Services lists them), so no request the
// tests send escapes AWS's rules.
func TestModelsCoverFake(t *testing.T) {
	known := map[string]bool{}
	for _, op := range trim.Ops() {
		known[op[strings.Index(op, ".")+1:]] = true
	}
	typ := reflect.TypeOf(&FakeAWS{})
	n := 0
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		if m.Type.NumIn() < 3 || !strings.HasSuffix(m.Type.In(2).String(), "Input") {
			continue
		}
		n++
		if !known[m.Name] {
			t.Errorf("the fake answers %s (%s), which trim.Services does not list: add it there and run cmd/trimmodels", m.Name, m.Type.In(2))
		}
	}
	if n < 50 {
		t.Fatalf("found only %d operations on the fake", n)
	}
}
