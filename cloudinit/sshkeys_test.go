package cloudinit

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

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

// TestSSHHostKeyMadeOnTheInstance: the user-data carries no host key; the
// image's keys are deleted and cloud-init makes one ed25519 key at first
// boot, whose public half the server publishes (mlstack_keys.py).
func TestSSHHostKeyMadeOnTheInstance(t *testing.T) {
	t.Parallel()
	doc := render(t, validParams())
	c := parseAny(t, doc)
	if _, ok := c["ssh_keys"]; ok {
		t.Error("the user-data carries ssh_keys: a host key must be made on the instance")
	}
	if strings.Contains(string(doc), "PRIVATE KEY") {
		t.Error("the user-data holds a private key")
	}
	if c["ssh_deletekeys"] != true {
		t.Errorf("ssh_deletekeys = %v, want true (the image's own host keys must go)", c["ssh_deletekeys"])
	}
	if g, ok := c["ssh_genkeytypes"].([]any); !ok || len(g) != 1 || g[0] != "ed25519" {
		t.Errorf("ssh_genkeytypes = %v, want [ed25519] (the key mlstack_keys.py publishes)", c["ssh_genkeytypes"])
	}
}
