package server

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ParseCert reads the server's certificate from PEM (the one block the
// server publishes).
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Covers reports whether cert names host (a DNS name or an IP address) and
// is valid at now.
func Covers(cert *x509.Certificate, host string, now time.Time) error {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("the certificate is valid from %s to %s, not now", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return cert.VerifyHostname(host)
}

// PinnedTLS trusts the pinned certificate alone: no system root, no other
// certificate, whoever signed it. Hostname checks stay on.
func PinnedTLS(certPEM []byte) (*tls.Config, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pinned server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// PinnedClient is an HTTP client that trusts only the pinned certificate
// (and still speaks plain HTTP to an http:// URL, for tests' local servers).
func PinnedClient(certPEM []byte, timeout time.Duration) (*http.Client, error) {
	cfg, err := PinnedTLS(certPEM)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: timeout, Transport: pinnedTransport(cfg)}, nil
}

func pinnedTransport(cfg *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: healthDialTimeout}
	return &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: dialer.DialContext, TLSClientConfig: cfg,
		TLSHandshakeTimeout: 10 * time.Second}
}

// SPKIHash is the base64 SHA-256 of the certificate's public key, the form
// Chromium's --ignore-certificate-errors-spki-list pins.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
