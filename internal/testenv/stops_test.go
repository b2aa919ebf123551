package testenv

import (
	"testing"
)

func TestStopsAt(t *testing.T) {
	if got := StopsAt(func(testing.TB) {}); got != "" {
		t.Errorf("a helper that returned: %q", got)
	}
	reached := false
	if got := StopsAt(func(tb testing.TB) { tb.Fatalf("no %s", "sshd"); reached = true }); got != "no sshd" || reached {
		t.Errorf("Fatalf: %q, went on: %v", got, reached)
	}
	defer func() {
		if r := recover(); r != "other" {
			t.Errorf("another panic came back as %v", r)
		}
	}()
	StopsAt(func(testing.TB) { panic("other") })
}
