package local

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const (
	testDNS = "ec2-203-0-113-9.eu-west-3.compute.amazonaws.com"
	testIP  = "203.0.113.9"
)

func TestHostKeyFile(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if k, err := d.LoadHostKey(); k != nil || err != nil {
		t.Fatalf("LoadHostKey of a missing file = %v, %v; want nil, nil", k, err)
	}
	k1, err := NewHostKey("demo")
	if err != nil {
		t.Fatal(err)
	}
	if k1.Public.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s", k1.Public.Type())
	}
	if err := d.SaveHostKey(k1); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.HostKeyFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, mode %v", err, fi)
	}
	k2, err := d.LoadHostKey()
	if err != nil || !bytes.Equal(k1.Public.Marshal(), k2.Public.Marshal()) || !bytes.Equal(k1.Private, k2.Private) {
		t.Fatalf("LoadHostKey must give back the saved key: %v", err)
	}
	line := k1.AuthorizedLine()
	if !strings.HasPrefix(line, "ssh-ed25519 ") || strings.Contains(line, "\n") {
		t.Errorf("authorized line %q", line)
	}
	if !strings.HasPrefix(k1.Fingerprint(), "SHA256:") {
		t.Errorf("fingerprint %q", k1.Fingerprint())
	}
	// A damaged file is refused without echoing it.
	if err := d.writeFile(hostKeyName, []byte("not a key, but secret-looking 123")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LoadHostKey(); err == nil || strings.Contains(err.Error(), "secret-looking") {
		t.Errorf("damaged host key: %v", err)
	}
}

func TestWriteKnownHosts(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	k, err := NewHostKey("demo")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := d.WriteKnownHosts([]string{testDNS, testIP}, k.Public)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	if changed, err := d.WriteKnownHosts([]string{testDNS, testIP}, k.Public); err != nil || changed {
		t.Errorf("same content again: changed %v, %v", changed, err)
	}
	if changed, err := d.WriteKnownHosts([]string{"", ""}, k.Public); err != nil || changed {
		t.Errorf("no names: changed %v, %v", changed, err)
	}
	fi, err := os.Stat(d.KnownHostsFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts: %v, %v", err, fi)
	}
	cb, err := knownhosts.New(d.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.ParseIP(testIP), Port: 22}
	for _, h := range []string{testDNS, testIP} {
		if err := cb(h+":22", remote, k.Public); err != nil {
			t.Errorf("known_hosts does not pin the key for %s: %v", h, err)
		}
	}
	other, err := NewHostKey("other")
	if err != nil {
		t.Fatal(err)
	}
	if err := cb(testDNS+":22", remote, other.Public); err == nil {
		t.Error("known_hosts accepts another key")
	}
}

func TestHasSSHKeys(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if d.HasSSHKeys() {
		t.Fatal("an empty dir has SSH keys")
	}
	priv, _, err := NewSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveSSHKey(priv); err != nil {
		t.Fatal(err)
	}
	if d.HasSSHKeys() {
		t.Error("a login key alone counts as both keys")
	}
	k, err := NewHostKey("demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveHostKey(k); err != nil {
		t.Fatal(err)
	}
	if !d.HasSSHKeys() {
		t.Error("both keys saved, HasSSHKeys false")
	}
}
