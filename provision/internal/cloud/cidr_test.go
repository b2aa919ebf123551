package cloud_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

func TestDetectPublicIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		want    string
		wantErr bool
	}{
		{"checkip answer", 200, "198.51.100.7\n", "198.51.100.7", false},
		{"no newline", 200, "203.0.113.9", "203.0.113.9", false},
		{"garbage", 200, "<html>hello</html>", "", true},
		{"empty", 200, "", "", true},
		{"server error", 500, "198.51.100.7\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			got, err := cloud.DetectPublicIP(context.Background(), srv.URL)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("detectPublicIP = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("detectPublicIP: %v", err)
			}
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("detectPublicIP = %v, want %s", got, tt.want)
			}
		})
	}
}

// detectCIDR turns the detected address into the single allowed /32.
func TestDetectCIDR(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ip      string
		err     error
		want    string
		wantErr bool
	}{
		{"ipv4", "198.51.100.7", nil, "198.51.100.7/32", false},
		{"ipv6 refused", "2001:db8::1", nil, "", true},
		{"detection failed", "", errors.New("timeout"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cloud.DetectCIDR(func() (netip.Addr, error) {
				if tt.err != nil {
					return netip.Addr{}, tt.err
				}
				return netip.MustParseAddr(tt.ip), nil
			})
			if tt.wantErr {
				if !cloud.IsUsage(err) {
					t.Fatalf("detectCIDR = %q, %v; want a UsageError", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("detectCIDR = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
