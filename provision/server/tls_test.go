package server

// The pinned certificate (tls.go) and the one-shot Probe (health.go) with
// certificates generated here: a server is trusted for its own certificate
// alone, by name and validity.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// genCert is a self-signed certificate for dns and 127.0.0.1, valid from
// notBefore to notAfter, signed by key (a new one when nil).
func genCert(t *testing.T, key *ecdsa.PrivateKey, dns string, notBefore, notAfter time.Time) ([]byte, tls.Certificate, *x509.Certificate) {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: notBefore, NotAfter: notAfter,
		DNSNames: []string{dns}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert
}

func TestParseCert(t *testing.T) {
	t.Parallel()
	now := time.Now()
	certPEM, _, want := genCert(t, nil, "ec2-1-2-3-4.example", now.Add(-time.Hour), now.Add(time.Hour))
	got, err := ParseCert(certPEM)
	if err != nil || !got.Equal(want) {
		t.Fatalf("ParseCert = %v, %v; want the certificate", got, err)
	}
	for name, in := range map[string][]byte{
		"empty":          nil,
		"a private key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"garbage in PEM": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}),
	} {
		if c, err := ParseCert(in); err == nil || c != nil {
			t.Errorf("ParseCert(%s) = %v, %v; want an error", name, c, err)
		}
	}
	if _, err := PinnedTLS([]byte("nonsense")); err == nil || !strings.Contains(err.Error(), "pinned server certificate") {
		t.Errorf("PinnedTLS(nonsense) = %v, want it to say what it read", err)
	}
	if _, err := PinnedClient([]byte("nonsense"), time.Second); err == nil {
		t.Error("PinnedClient(nonsense) made a client")
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	now := time.Now()
	from, to := now.Add(-time.Hour), now.Add(24*time.Hour)
	_, _, cert := genCert(t, nil, "ec2-1-2-3-4.example", from, to)
	for _, tt := range []struct {
		name string
		host string
		at   time.Time
		want string // "" for no error, else a part of it
	}{
		{"its name", "ec2-1-2-3-4.example", now, ""},
		{"its IP", "127.0.0.1", now, ""},
		{"another name", "ec2-5-6-7-8.example", now, "ec2-5-6-7-8.example"},
		{"another IP", "10.0.0.1", now, "10.0.0.1"},
		{"before it is valid", "ec2-1-2-3-4.example", from.Add(-time.Minute), "not now"},
		{"after it expired", "ec2-1-2-3-4.example", to.Add(time.Minute), "not now"},
	} {
		err := Covers(cert, tt.host, tt.at)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Covers = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Covers = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestSPKIHash(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, _, a := genCert(t, key, "a.example", now, now.Add(time.Hour))
	_, _, b := genCert(t, key, "b.example", now, now.Add(2*time.Hour))
	_, _, other := genCert(t, nil, "a.example", now, now.Add(time.Hour))

	// What Chromium pins: base64(SHA-256(DER SubjectPublicKeyInfo)), from the key itself.
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := SPKIHash(a); got != want {
		t.Errorf("SPKIHash = %q, want %q", got, want)
	}
	if SPKIHash(b) != want {
		t.Error("two certificates of one key hash differently")
	}
	if SPKIHash(other) == want {
		t.Error("another key hashes the same")
	}
}

// TestPinnedClient: the client reaches a server with the pinned
// certificate only, checks its name, and still speaks plain HTTP.
func TestPinnedClient(t *testing.T) {
	t.Parallel()
	now := time.Now()
	servedPEM, served, _ := genCert(t, nil, "mlflow.example", now.Add(-time.Hour), now.Add(time.Hour))
	otherPEM, _, _ := genCert(t, nil, "mlflow.example", now.Add(-time.Hour), now.Add(time.Hour))
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("OK")) }))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{served}}
	ts.StartTLS()
	defer ts.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("OK")) }))
	defer plain.Close()
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())

	get := func(pin []byte, url string) error {
		c, err := PinnedClient(pin, 5*time.Second)
		if err != nil {
			return err
		}
		if c.Timeout != 5*time.Second {
			t.Errorf("client timeout %s, want 5s", c.Timeout)
		}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(servedPEM, ts.URL); err != nil {
		t.Errorf("pinned certificate: %v", err)
	}
	if err := get(otherPEM, ts.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("another certificate: %v, want a certificate error", err)
	}
	// The name is checked: the certificate does not name localhost.
	if err := get(servedPEM, "https://localhost:"+port); err == nil || !strings.Contains(err.Error(), "localhost") {
		t.Errorf("a name the certificate lacks: %v, want a hostname error", err)
	}
	if err := get(servedPEM, plain.URL); err != nil {
		t.Errorf("plain http: %v", err)
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	now := time.Now()
	servedPEM, served, _ := genCert(t, nil, "mlflow.example", now.Add(-time.Hour), now.Add(time.Hour))
	otherPEM, _, _ := genCert(t, nil, "mlflow.example", now.Add(-time.Hour), now.Add(time.Hour))
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{served}}
	ts.StartTLS()
	defer ts.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	pinned, err := PinnedTLS(servedPEM)
	if err != nil {
		t.Fatal(err)
	}
	other, err := PinnedTLS(otherPEM)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if status, err := Probe(ctx, ts.URL+"/health", pinned, 5*time.Second); status != 503 || err != nil {
		t.Errorf("Probe = %d, %v; want 503, nil", status, err)
	}
	if status, err := Probe(ctx, ts.URL+"/health", other, 5*time.Second); status != 0 || err == nil || err.Error() != "no answer" {
		t.Errorf("Probe with another pin = %d, %v; want 0, no answer", status, err)
	}
	if status, err := Probe(ctx, closedURL+"/health", nil, 5*time.Second); status != 0 || err == nil || err.Error() != "connection refused" {
		t.Errorf("Probe of a closed port = %d, %v; want 0, connection refused", status, err)
	}
}

// TestProxyFor reads the proxy from the environment; net/http reads it
// once a process, so a child process of this test binary does it.
func TestProxyFor(t *testing.T) {
	t.Parallel()
	if os.Getenv("MLSTACK_PROXYFOR_CHILD") == "1" {
		// In the child: print what ProxyFor says for two URLs.
		os.Stdout.WriteString(ProxyFor("http://ec2-1-2-3-4.example:5000/health") + "|" + ProxyFor("http://10.9.8.7/health") + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProxyFor$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MLSTACK_PROXYFOR_CHILD=1",
		"HTTP_PROXY=http://user:secret@proxy.example:3128", "http_proxy=http://user:secret@proxy.example:3128",
		"NO_PROXY=10.9.8.7", "no_proxy=10.9.8.7", "REQUEST_METHOD=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "http://proxy.example:3128|\n") {
		t.Errorf("ProxyFor in an environment with a proxy and NO_PROXY printed:\n%s\nwant http://proxy.example:3128 without credentials, and none for the excluded host", out)
	}
	if strings.Contains(string(out), "secret") {
		t.Errorf("ProxyFor shows the proxy's password:\n%s", out)
	}
}

func TestCheckFailedError(t *testing.T) {
	t.Parallel()
	if got := (&CheckFailedError{Failed: 2, Total: 9}).Error(); got != "check: 2 of 9 checks failed" {
		t.Errorf("Error() = %q", got)
	}
}
