//go:build boottest

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/secretscan"
)

// scanSkips are the files of the work dir (not of its folders) that hold secrets by design
// (the secret list, the gzip user-data as EC2 has it, scanned unpacked as
// user-data.txt, the IMDS emulator's config, the env files), the binary,
// moto's folder (its log is scanned apart) and the rootfs copies, of which
// only /var/log is scanned.
var scanSkips = []string{"secrets", "user-data", "aemm.json", "env*.sh", "rootfs*", "mlstack", "moto", "gobin"}

// phaseSecrets: no secret of the stack (nor the role's keys, nor the
// private halves of the instance's TLS key and SSH host key, which must
// never leave it) shows in what the run printed or logged: mlstack's
// outputs, the console, the container's logs and journal, the state dir's
// files besides those meant for secrets, what EC2 holds (the user-data),
// moto's request log.
func (b *bootTest) phaseSecrets(t *testing.T) {
	journal, _ := b.inContainer(t, nil, "journalctl", "--no-pager", "-o", "short-iso")
	ud, err := cloudinit.Decode(b.inst.userData)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ud, []byte("PRIVATE KEY")) {
		t.Fatal("the user-data holds a private key")
	}
	writeFiles(t, map[string][]byte{filepath.Join(b.work, "journal.txt"): []byte(journal), filepath.Join(b.work, "user-data.txt"): ud})
	paths := []string{b.work}
	logs, _ := filepath.Glob(filepath.Join(b.work, "rootfs*", "var", "log"))
	b.scan(t, b.secrets(), append(paths, logs...), true)
	// moto's request log, for everything but the role's session tokens:
	// with proxied artifacts the client downloads through presigned S3
	// URLs the server makes, which carry the role's key id and session
	// token in their query (never its secret), as every presigned URL of
	// temporary credentials does, and moto logs each request line.
	var butTokens []string
	for _, s := range b.secrets() {
		if !slices.Contains(b.roleTokens, s) {
			butTokens = append(butTokens, s)
		}
	}
	b.scan(t, butTokens, []string{filepath.Join(b.work, "moto", "moto.log")}, false)
}

// scan fails t when one of the secrets, the state dir's or the instance's
// private keys shows in paths (skipping scanSkips when skip is set).
func (b *bootTest) scan(t *testing.T, secrets, paths []string, skip bool) {
	sc := secretscan.New()
	for i, s := range secrets {
		sc.AddString("secret "+strconv.Itoa(i+1)+" of the run", s)
	}
	others, err := sc.AddStateDir(b.state)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range b.privateKeys {
		pemBytes, err := os.ReadFile(k)
		if err != nil {
			t.Fatalf("the instance's private key: %v", err)
		}
		sc.AddPrivateKey(k, pemBytes)
	}
	skipFn := func(path string) bool {
		if path == b.state || strings.HasPrefix(path, b.state+"/") {
			return true // its files that must hold none are in others
		}
		for _, pat := range scanSkips {
			if ok, _ := filepath.Match(pat, filepath.Base(path)); ok && skip && filepath.Dir(path) == b.work {
				return true
			}
		}
		return false
	}
	if skip {
		paths = append(paths, others...)
	}
	findings, files, err := sc.ScanPaths(paths, skipFn)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("LEAK: %s", f)
	}
	if len(findings) > 0 {
		t.FailNow()
	}
	t.Logf("no secret in %d files (%d secrets in %d forms)", files, sc.Len(), sc.Patterns())
}

// phaseDown: the container stops; `mlstack down --yes` succeeds.
func (b *bootTest) phaseDown(t *testing.T) {
	b.stopContainer(t)
	b.mlstack(t, "down", "--yes")
}

// phaseLeftovers: nothing the stack owned is left in moto (every angle
// down cleans up), nor its local state.
func (b *bootTest) phaseLeftovers(t *testing.T) {
	left, err := stackLeftovers(context.Background(), b.aws, bootStack)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("mlstack down left %d resource(s) in moto:\n%s", len(left), strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Join(b.state, bootStack)); !os.IsNotExist(err) {
		t.Fatalf("mlstack down left local state in %s", filepath.Join(b.state, bootStack))
	}
}
