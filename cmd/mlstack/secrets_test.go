package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

// Everything mlstack printed during the whole test run, and every secret
// it created, so TestMain can prove no secret ever reached an output other
// than the one meant to carry it (`mlstack env`'s stdout).
var seen struct {
	mu      sync.Mutex
	outputs []labelled
	secrets map[string]string // value → what it is
}

type labelled struct{ label, text string }

func recordOutput(label, text string) {
	seen.mu.Lock()
	seen.outputs = append(seen.outputs, labelled{label, text})
	seen.mu.Unlock()
}

// harvestSecrets adds the secrets in every state.json under dir.
func harvestSecrets(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "state.json" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var st localState
		if json.Unmarshal(b, &st) != nil {
			return nil
		}
		seen.mu.Lock()
		defer seen.mu.Unlock()
		if seen.secrets == nil {
			seen.secrets = map[string]string{}
		}
		for what, v := range map[string]string{"secret access key": st.SecretAccessKey, "MLflow password": st.MLflowPassword, "Flask secret key": st.FlaskSecretKey} {
			if v != "" {
				seen.secrets[v] = what
			}
		}
		if priv, err := os.ReadFile(filepath.Join(filepath.Dir(path), "id_ed25519")); err == nil {
			for _, line := range strings.Split(string(priv), "\n") {
				if len(line) > 40 && !strings.HasPrefix(line, "-----") {
					seen.secrets[line] = "SSH private key"
				}
			}
		}
		return nil
	})
}

// leaks returns a line per secret found in a recorded output.
func leaks() []string {
	seen.mu.Lock()
	defer seen.mu.Unlock()
	var out []string
	for secret, what := range seen.secrets {
		for _, o := range seen.outputs {
			if strings.Contains(o.text, secret) {
				out = append(out, fmt.Sprintf("%s appeared in %s", what, o.label))
			}
		}
	}
	return out
}

func TestMain(m *testing.M) {
	code := testenv.Run(m)
	seen.mu.Lock()
	n, k := len(seen.secrets), len(seen.outputs)
	seen.mu.Unlock()
	if l := leaks(); len(l) > 0 {
		fmt.Fprintf(os.Stderr, "secret scan: FAILED\n%s\n", strings.Join(l, "\n"))
		code = 1
	} else if k > 0 {
		fmt.Fprintf(os.Stderr, "secret scan: %d secrets, none in %d recorded outputs\n", n, k)
	}
	os.Exit(code)
}
