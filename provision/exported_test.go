package provision

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestExportedDurations: the command line's duration flags read and write
// as the AWS layer does; a bad one is a usage error, wrapped or not.
func TestExportedDurations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		back string
	}{
		{"2d", 48 * time.Hour, "2d"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"4h", 4 * time.Hour, "4h"},
	} {
		d, err := ParseDuration("--ttl", tt.in)
		if err != nil || d != tt.want || FormatDuration(d) != tt.back {
			t.Errorf("ParseDuration(%q) = %v, %v (formats as %q); want %v, %q", tt.in, d, err, FormatDuration(d), tt.want, tt.back)
		}
	}
	_, err := ParseDuration("--ttl", "soon")
	if !IsUsage(err) || !IsUsage(fmt.Errorf("up: %w", err)) || IsUsage(errors.New("plain")) {
		t.Errorf("ParseDuration(soon) = %v: want a usage error, also when wrapped", err)
	}
}
