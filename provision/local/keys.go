package local

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

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

// HostKey is the instance's SSH host key, generated here so that even the
// first connection is verified.
type HostKey struct {
	Private []byte // OpenSSH PEM; a secret
	Public  ssh.PublicKey
}

// AuthorizedLine is the public key as one "ssh-ed25519 AAAA… comment" line.
func (k HostKey) AuthorizedLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Public)))
}

// Fingerprint is OpenSSH's SHA256:… form of the public key.
func (k HostKey) Fingerprint() string { return ssh.FingerprintSHA256(k.Public) }

// NewHostKey generates a host key in memory; SaveHostKey keeps it.
func NewHostKey(stack string) (*HostKey, error) {
	priv, _, err := NewSSHKey("mlstack-" + stack + "-host")
	if err != nil {
		return nil, err
	}
	return parseHostKey(priv, "")
}

func parseHostKey(priv []byte, file string) (*HostKey, error) {
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		// Never echo the content.
		return nil, fmt.Errorf("SSH host key %s is not an OpenSSH private key; move it away and run `mlstack up` to start over", file)
	}
	return &HostKey{Private: priv, Public: signer.PublicKey()}, nil
}

// LoadHostKey reads the host key; a missing file gives (nil, nil).
func (d Dir) LoadHostKey() (*HostKey, error) {
	b, err := os.ReadFile(d.HostKeyFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading SSH host key: %w", err)
	}
	return parseHostKey(b, d.HostKeyFile())
}

// SaveHostKey writes the host key's private half (0600).
func (d Dir) SaveHostKey(k *HostKey) error { return d.writeFile(hostKeyName, k.Private) }

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
