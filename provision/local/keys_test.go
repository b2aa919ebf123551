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

// testPub is a fresh ed25519 public key.
func testPub(t *testing.T) ssh.PublicKey {
	t.Helper()
	_, line, err := NewSSHKey("k")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestPinnedHostKeyFile(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if k, err := d.LoadPinnedHostKey(); k != nil || err != nil {
		t.Fatalf("LoadPinnedHostKey of a missing file = %v, %v; want nil, nil", k, err)
	}
	k1 := testPub(t)
	if err := d.SavePinnedHostKey(k1); err != nil {
		t.Fatal(err)
	}
	k2, err := d.LoadPinnedHostKey()
	if err != nil || !bytes.Equal(k1.Marshal(), k2.Marshal()) {
		t.Fatalf("LoadPinnedHostKey must give back the saved key: %v", err)
	}
	if err := d.writeFile(hostKeyName, []byte("not a key")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LoadPinnedHostKey(); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("damaged host key: %v", err)
	}
}

func TestServerCertFile(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if b, err := d.LoadServerCert(); b != nil || err != nil {
		t.Fatalf("LoadServerCert of a missing file = %q, %v", b, err)
	}
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := d.SaveServerCert(pem); err != nil {
		t.Fatal(err)
	}
	if b, err := d.LoadServerCert(); err != nil || !bytes.Equal(b, pem) {
		t.Fatalf("LoadServerCert = %q, %v", b, err)
	}
	if !strings.HasSuffix(d.ServerCertFile(), "/demo/server.crt") {
		t.Errorf("cert file %s", d.ServerCertFile())
	}
}

func TestWriteKnownHosts(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	k := testPub(t)
	changed, err := d.WriteKnownHosts([]string{testDNS, testIP}, k)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	if changed, err := d.WriteKnownHosts([]string{testDNS, testIP}, k); err != nil || changed {
		t.Errorf("same content again: changed %v, %v", changed, err)
	}
	if changed, err := d.WriteKnownHosts([]string{"", ""}, k); err != nil || changed {
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
		if err := cb(h+":22", remote, k); err != nil {
			t.Errorf("known_hosts does not pin the key for %s: %v", h, err)
		}
	}
	if err := cb(testDNS+":22", remote, testPub(t)); err == nil {
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
	if err := d.SavePinnedHostKey(testPub(t)); err != nil {
		t.Fatal(err)
	}
	if !d.HasSSHKeys() {
		t.Error("both keys saved, HasSSHKeys false")
	}
}
