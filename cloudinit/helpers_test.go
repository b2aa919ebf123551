// Helpers shared by the cloudinit tests: valid parameters, rendering and
// parsing the user-data, and finding the external checkers.

package cloudinit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/secretscan"
	"github.com/mlstack/mlstack/internal/testenv"
)

func validParams() Params {
	return Params{
		Stack:         "demo",
		Bucket:        "mlstack-demo-123456789012-us-east-1",
		Region:        "us-east-1",
		MLflowVersion: DefaultMLflowVersion,
		AdminUsername: "admin",
	}
}

// needTool finds an external checker. Locally a missing tool skips the test
// and fails the run (testenv); in CI (CI set) it fails the test, because CI
// must never silently skip a check.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, name+" is not installed")
	}
	return path
}

// pythonYAML returns a python3 that can import PyYAML, the parser cloud-init uses.
func pythonYAML(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import yaml").Run() == nil {
			return py
		}
	}
	testenv.Missing(t, "no python3 with PyYAML (Debian: python3-yaml)")
	return ""
}

func render(t *testing.T, p Params) []byte {
	t.Helper()
	out, err := Render(p)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return out
}

type writeFile struct {
	Path        string `json:"path"`
	Owner       string `json:"owner"`
	Permissions string `json:"permissions"`
	Defer       bool   `json:"defer"`
	Content     string `json:"content"`
}

type cloudConfig struct {
	Swap          map[string]any `json:"swap"`
	PackageUpdate bool           `json:"package_update"`
	Packages      []string       `json:"packages"`
	Users         []any          `json:"users"`
	WriteFiles    []writeFile    `json:"write_files"`
	Runcmd        []any          `json:"runcmd"`
}

func (c cloudConfig) file(t *testing.T, path string) writeFile {
	t.Helper()
	for _, f := range c.WriteFiles {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("write_files has no %s", path)
	return writeFile{}
}

// parse loads the user-data with PyYAML's safe_load, as cloud-init does.
func parse(t *testing.T, userData []byte) cloudConfig {
	t.Helper()
	cmd := exec.Command(pythonYAML(t), "-c",
		"import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = bytes.NewReader(userData)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML cannot parse the user-data: %v\n%s", err, stderr.String())
	}
	var c cloudConfig
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("decode parsed user-data: %v", err)
	}
	return c
}

func sameList(v any, want []any) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

// unitValue returns KEY's value in a unit file, continuation lines included.
func unitValue(t *testing.T, unit, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + key + `=((?:.*\\\n)*.*)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatalf("unit has no %s=", key)
	}
	return m[1]
}

// noSecretsIn fails t when the file at path shows one of the secrets, as
// stored, cut short, base64-, URL- or hex-encoded.
func noSecretsIn(t *testing.T, path string, secrets ...string) {
	t.Helper()
	sc := secretscan.New()
	for i, s := range secrets {
		if !sc.AddString(fmt.Sprintf("secret %d", i+1), s) {
			t.Fatalf("secret %d is too short to scan for", i+1)
		}
	}
	findings, files, err := sc.ScanPaths([]string{path}, nil)
	if err != nil || files != 1 {
		t.Fatalf("scanning %s: %v", path, err)
	}
	for _, f := range findings {
		t.Errorf("secret in %s", f)
	}
}

// unitEnv returns the unit's Environment= assignments. The template writes
// one unquoted NAME=value per line, which is all this reads: a value with a
// quote or a space would need systemd's unquoting and is refused.
func unitEnv(unit string) map[string]string {
	env := map[string]string{}
	for line := range strings.Lines(unit) {
		kv, ok := strings.CutPrefix(strings.TrimSpace(line), "Environment=")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(v, `"' `) {
			panic("unitEnv cannot read " + line)
		}
		env[k] = v
	}
	return env
}

// setupCmd is the runcmd entry for p: mlstack-setup with the version, the
// region, and the URL and sha256 of the lock Bootstrap gives for p.
func setupCmd(t *testing.T, p Params) []any {
	t.Helper()
	boot, err := Bootstrap(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(boot[0].Body)
	if boot[0].SHA256 != hex.EncodeToString(sum[:]) || !strings.HasPrefix(boot[0].Key, "bootstrap/mlflow-lock-"+p.arch()+"-") {
		t.Fatalf("bootstrap object %s: sha256 %s does not match its body", boot[0].Key, boot[0].SHA256)
	}
	url := "https://" + p.Bucket + ".s3." + p.Region + ".amazonaws.com/" + boot[0].Key
	if p.S3EndpointURL != "" {
		url = strings.TrimRight(p.S3EndpointURL, "/") + "/" + p.Bucket + "/" + boot[0].Key
	}
	return []any{"/usr/local/sbin/mlstack-setup", p.version(), p.Region, url, boot[0].SHA256}
}
