package cloudinit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testHostKey returns a fresh ed25519 host key as (OpenSSH PEM, authorized_keys line).
func testHostKey(t *testing.T) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "mlstack-demo-host")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

func sshParams(t *testing.T) Params {
	p := validParams()
	p.SSHHostKeyPrivate, p.SSHHostKeyPublic = testHostKey(t)
	return p
}

// parseAny loads the user-data with PyYAML into a generic map.
func parseAny(t *testing.T, userData []byte) map[string]any {
	t.Helper()
	cmd := exec.Command(pythonYAML(t), "-c",
		"import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = bytes.NewReader(userData)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML cannot parse the user-data: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSSHHostKeyDelivered: the host key reaches cloud-init's ssh module
// byte for byte, the image's keys are deleted and no other type is generated.
func TestSSHHostKeyDelivered(t *testing.T) {
	p := sshParams(t)
	c := parseAny(t, render(t, p))
	keys, ok := c["ssh_keys"].(map[string]any)
	if !ok {
		t.Fatalf("no ssh_keys mapping in the user-data: %v", c["ssh_keys"])
	}
	if len(keys) != 2 {
		t.Errorf("ssh_keys has %d entries, want only the ed25519 pair", len(keys))
	}
	if keys["ed25519_private"] != p.SSHHostKeyPrivate {
		t.Error("ssh_keys.ed25519_private differs from the generated private key")
	}
	if keys["ed25519_public"] != p.SSHHostKeyPublic {
		t.Errorf("ssh_keys.ed25519_public = %v, want %s", keys["ed25519_public"], p.SSHHostKeyPublic)
	}
	if c["ssh_deletekeys"] != true {
		t.Errorf("ssh_deletekeys = %v, want true (the image's own host keys must go)", c["ssh_deletekeys"])
	}
	// The schema wants at least one type; cloud-init generates none while
	// ssh_keys is given, and never another type than ours.
	if g, ok := c["ssh_genkeytypes"].([]any); !ok || len(g) != 1 || g[0] != "ed25519" {
		t.Errorf("ssh_genkeytypes = %v, want [ed25519] (no other host key type)", c["ssh_genkeytypes"])
	}
	// The private key read back is the same key.
	signer, err := ssh.ParsePrivateKey([]byte(keys["ed25519_private"].(string)))
	if err != nil {
		t.Fatalf("private key does not parse after YAML: %v", err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); !strings.HasPrefix(p.SSHHostKeyPublic, got) {
		t.Error("private key after YAML does not match the public key")
	}
}

// TestSSHHostKeyOmittedWhenUnset: without a host key the image keeps its
// own (cloud-init defaults), so the rendering is the golden one.
func TestSSHHostKeyOmittedWhenUnset(t *testing.T) {
	c := parseAny(t, render(t, validParams()))
	for _, k := range []string{"ssh_keys", "ssh_deletekeys", "ssh_genkeytypes"} {
		if _, ok := c[k]; ok {
			t.Errorf("%s present without a host key", k)
		}
	}
}

func TestSSHHostKeySchema(t *testing.T) {
	ci := needTool(t, "cloud-init")
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, render(t, sshParams(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ci, "schema", "--config-file", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
}

func TestSSHHostKeyValidate(t *testing.T) {
	priv, pub := testHostKey(t)
	otherPriv, _ := testHostKey(t)
	tests := []struct {
		name, priv, pub, field string
	}{
		{"public only", "", pub, "SSHHostKeyPrivate"},
		{"private only", priv, "", "SSHHostKeyPublic"},
		{"mismatched pair", otherPriv, pub, "SSHHostKeyPrivate"},
		{"garbage private", "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n", pub, "SSHHostKeyPrivate"},
		{"two public lines", priv, pub + "\n" + pub, "SSHHostKeyPublic"},
		{"not a key", priv, "ssh-ed25519 !!!", "SSHHostKeyPublic"},
		{"no trailing newline", strings.TrimSuffix(priv, "\n"), pub, "SSHHostKeyPrivate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validParams()
			p.SSHHostKeyPrivate, p.SSHHostKeyPublic = tc.priv, tc.pub
			err := p.Validate()
			if !errors.Is(err, ErrInvalidParams) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.field)
			}
			if _, err := Render(p); err == nil {
				t.Fatal("Render accepted an invalid host key")
			}
			for _, secret := range []string{priv, otherPriv} {
				body := strings.Split(strings.TrimSpace(secret), "\n")[1]
				if strings.Contains(err.Error(), body) {
					t.Fatal("error text contains private key material")
				}
			}
		})
	}
}
