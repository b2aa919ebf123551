package local

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// NewSSHKey generates an ed25519 key here: the private half never leaves
// this machine. It returns the OpenSSH PEM private key and the
// authorized_keys line.
func NewSSHKey(comment string) (privPEM, authorized []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding ed25519 key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding ed25519 public key: %w", err)
	}
	return pem.EncodeToMemory(block), ssh.MarshalAuthorizedKey(sp), nil
}

// SaveSSHKey writes the private key of the stack's key pair.
func (d Dir) SaveSSHKey(privPEM []byte) error { return d.writeFile(sshKeyName, privPEM) }

// SavePinnedHostKey keeps the host key the server made and published:
// from then on SSH to the stack accepts that key alone.
func (d Dir) SavePinnedHostKey(pub ssh.PublicKey) error {
	return d.writeFile(hostKeyName, ssh.MarshalAuthorizedKey(pub))
}

// LoadPinnedHostKey reads the pinned host key; a missing file gives (nil, nil).
func (d Dir) LoadPinnedHostKey() (ssh.PublicKey, error) {
	b, err := os.ReadFile(d.HostKeyFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the pinned SSH host key: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("pinned SSH host key %s: %w; move it away, and up pins the server's again", d.HostKeyFile(), err)
	}
	return pub, nil
}

// SaveServerCert pins the server's TLS certificate (PEM; public).
func (d Dir) SaveServerCert(certPEM []byte) error { return d.writeFile(serverCertName, certPEM) }

// LoadServerCert reads the pinned certificate; a missing file gives (nil, nil).
func (d Dir) LoadServerCert() ([]byte, error) {
	b, err := os.ReadFile(d.ServerCertFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the pinned server certificate: %w", err)
	}
	return b, nil
}

// WriteKnownHosts pins pub for the given host names (the instance's public
// DNS name and IP) and reports whether the file changed.
func (d Dir) WriteKnownHosts(hosts []string, pub ssh.PublicKey) (changed bool, err error) {
	var names []string
	for _, h := range hosts {
		if h != "" {
			names = append(names, knownhosts.Normalize(h))
		}
	}
	if len(names) == 0 {
		return false, nil
	}
	line := []byte(knownhosts.Line(names, pub) + "\n")
	if before, err := os.ReadFile(d.KnownHostsFile()); err == nil && string(before) == string(line) {
		return false, nil
	}
	return true, d.writeFile(knownHostsName, line)
}
