package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/browsertest"
	"github.com/mlstack/mlstack/internal/mlflowtest"
	"github.com/mlstack/mlstack/provision/server"
)

// TestUIFlags: boot ui's command line and what it refuses. The check
// itself is internal/browsertest's, tested there against the real MLflow;
// the boot test runs it for real, with the options uiBrowserOptions makes.
func TestUIFlags(t *testing.T) {
	const host = "ec2-203-0-113-10.eu-west-3.compute.amazonaws.com"
	dir := t.TempDir()
	certPEM, _, err := mlflowtest.SelfSigned(host, net.IPv4(203, 0, 113, 10))
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _, err := mlflowtest.SelfSigned("elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	certFile, otherFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "other.crt")
	for path, b := range map[string][]byte{certFile: certPEM, otherFile: otherPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := server.ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"-uri", "https://" + host + ":5000", "-cert", certFile, "-user", "admin", "-password-file", "pw",
		"-experiment", "boot", "-run", "boot-run", "-metric", "rmse", "-value", "0.25", "-out", dir}
	for _, tt := range []struct {
		name    string
		args    []string
		want    string // in the error; "" passes
		resolve map[string]string
	}{
		{"as the boot test calls it", base, "", nil},
		{"with a resolve rule", append(base, "-resolve", host+"=10.0.0.2,other.example=10.0.0.3"), "",
			map[string]string{host: "10.0.0.2", "other.example": "10.0.0.3"}},
		{"the IP, as the certificate names it", append(base, "-uri", "https://203.0.113.10:5000"), "", nil},
		{"no value, no output dir", base[:len(base)-4], "usage", nil},
		{"https without a certificate", append(base, "-cert", ""), "needs the certificate", nil},
		{"a certificate for another host", append(base, "-cert", otherFile), "does not fit", nil},
		{"a bad resolve rule", append(base, "-resolve", host), "want HOST=IP", nil},
		{"an argument", append(base, "extra"), "usage", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := optionsOf(tt.args)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want an error saying %q", err, tt.want)
				}
				return
			}
			if len(o.PinSPKI) != 1 || o.PinSPKI[0] != server.SPKIHash(cert) {
				t.Errorf("pinned %q, want the certificate's SPKI %q", o.PinSPKI, server.SPKIHash(cert))
			}
			if len(o.Resolve) != len(tt.resolve) {
				t.Errorf("resolve %v, want %v", o.Resolve, tt.resolve)
			}
			for h, ip := range tt.resolve {
				if o.Resolve[h] != ip {
					t.Errorf("resolve %v, want %v", o.Resolve, tt.resolve)
				}
			}
		})
	}
}

// optionsOf is what boot ui makes of args before it starts the browser.
func optionsOf(args []string) (browsertest.Options, error) {
	f, err := parseUIFlags(args)
	if err != nil {
		return browsertest.Options{}, err
	}
	return uiBrowserOptions(f)
}
