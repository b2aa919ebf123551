package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/secretscan"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/local/envfile"
	"golang.org/x/crypto/ssh"
)

// The whole-run secret scan. harvestSecrets adds the secrets of a state dir
// (every secret mlstack creates lands in one) and records its other files;
// recordOutput and recordLive record what the run printed: the in-process
// CLI (e.mlstack), the built binary run as a process, script(1) terminals,
// sshd's and the MLflow server's logs. TestMain scans all of it at the end
// with secretscan: a secret as stored, cut short, base64-, URL- or
// hex-encoded in any of it fails the run. Only `mlstack env`'s stdout and
// the files meant for secrets (secretscan.SecretFiles) may hold them. In a
// sharded run (shard_test.go) each test's process scans its own test's
// secrets and output: tests in other processes share no state to leak.
var seen = newRunScan()

type runScan struct {
	mu      sync.Mutex
	sc      *secretscan.Scanner
	outputs []labelled
	live    []liveOutput      // still being written: read at the end
	files   map[string]string // state dir file → content last recorded
	errs    []string          // state dirs whose secrets could not be read
}

type labelled struct{ label, text string }

type liveOutput struct {
	label string
	src   fmt.Stringer
}

func newRunScan() *runScan { return &runScan{sc: secretscan.New(), files: map[string]string{}} }

// recordOutput records an output for the scan.
func recordOutput(label, text string) { seen.record(label, text) }

// recordLive records an output that is still being written (a process's
// buffer, a server's log): the scan reads it at the end.
func recordLive(label string, src fmt.Stringer) { seen.recordLive(label, src) }

// harvestSecrets adds the secrets of every stack under the state dir dir,
// and records its other files, which must hold none.
func harvestSecrets(dir string) { seen.harvest(dir) }

// recordFileAtEnd records a file (a server's log) when t ends, before its
// temp dir goes: call it before starting the process that writes it, so
// that the process is stopped first (cleanups run last-in first-out).
func recordFileAtEnd(t *testing.T, label, path string) {
	t.Cleanup(func() {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("secret scan: reading %s: %v", label, err)
		}
		recordOutput(label, string(b))
	})
}

// startSSHD is sshdtest.Start with the server's log in the scan.
func startSSHD(t *testing.T, hostKeyPEM, authorizedKeys []byte) *sshdtest.Server {
	t.Helper()
	srv := sshdtest.Start(t, hostKeyPEM, authorizedKeys)
	recordLive("sshd log of "+t.Name(), srv.Log)
	return srv
}

// addKey makes a private key one of the secrets the run is scanned for.
func (r *runScan) addKey(label string, pemBytes []byte) {
	r.mu.Lock()
	r.sc.AddPrivateKey(label, pemBytes)
	r.mu.Unlock()
}

// addSecret makes value one of the secrets the run is scanned for; false
// when it is too short to scan for.
func (r *runScan) addSecret(label, value string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sc.AddString(label, value)
}

func (r *runScan) record(label, text string) {
	r.mu.Lock()
	r.outputs = append(r.outputs, labelled{label, text})
	r.mu.Unlock()
}

func (r *runScan) recordLive(label string, src fmt.Stringer) {
	r.mu.Lock()
	r.live = append(r.live, liveOutput{label, src})
	r.mu.Unlock()
}

func (r *runScan) harvest(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	others, err := r.sc.AddStateDir(dir)
	if err != nil {
		r.errs = append(r.errs, err.Error())
	}
	for _, f := range others {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 || r.files[f] == string(b) {
			continue // gone meanwhile, empty (a lock file), or recorded already
		}
		r.files[f] = string(b)
		r.outputs = append(r.outputs, labelled{"file " + f, string(b)})
	}
}

// leaks returns a line per secret found in a recorded output and per state
// dir whose secrets could not be read, and a line of statistics.
func (r *runScan) leaks() (problems []string, stats string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	for _, e := range r.errs {
		problems = append(problems, "cannot scan for the secrets of a state dir: "+e)
	}
	size := 0
	scan := func(label, text string) {
		size += len(text)
		for _, f := range r.sc.Scan(label, []byte(text)) {
			problems = append(problems, f.String())
		}
	}
	for _, o := range r.outputs {
		scan(o.label, o.text)
	}
	for _, l := range r.live {
		scan(l.label, l.src.String())
	}
	slices.Sort(problems) // an output recorded twice (a re-run) is reported once
	problems = slices.Compact(problems)
	stats = fmt.Sprintf("%d secrets (%d forms) in %d outputs and files (%d KiB), scanned in %s",
		r.sc.Len(), r.sc.Patterns(), len(r.outputs)+len(r.live), size/1024, time.Since(start).Round(time.Millisecond))
	return problems, stats
}

func TestMain(m *testing.M) {
	if code, sharded := runShards(); sharded {
		os.Exit(code) // the children ran the tests, TestMain's checks included
	}
	stopMoto := privateMoto()
	code := testenv.Run(m)
	stopMoto()
	problems, stats := seen.leaks()
	switch {
	case len(problems) > 0:
		fmt.Fprintf(os.Stderr, "secret scan: FAILED: %s\n%s\n", stats, strings.Join(problems, "\n"))
		code = 1
	case seen.sc.Len() > 0:
		fmt.Fprintf(os.Stderr, "secret scan: none of %s\n", stats)
	}
	if binPath != "" { // the mlstack binary built for the process tests (about 65 MB)
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestWholeRunScanFindsPlantedLeaks proves the whole-run scan can fail: on
// a private runScan it plants a secret of a state dir, each in another
// form, in each kind of output the run records, and expects every one to
// be found; a clean run is clean though the files meant for the secrets
// hold them. It needs no emulator.
func TestWholeRunScanFindsPlantedLeaks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := local.StackDir(root, "leaky")
	st := &local.Secrets{Stack: "leaky", Account: account, Region: testRegion, AccessKeyID: "AKIAEXAMPLELEAKY0001",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYLEAKYEXAMPLE", MLflowUser: "admin",
		MLflowPassword: "Jx7kPq2mWv9RtL4nYc8BzA3f", FlaskSecretKey: "fl4sk-S3cret-k3y-0123456789abcdef"}
	must(t, d.Save(st))
	must(t, d.WriteEnv([]envfile.Var{{Name: "AWS_SECRET_ACCESS_KEY", Value: st.SecretAccessKey}}))
	pemBytes, _, err := local.NewSSHKey("mlstack-leaky")
	must(t, err)
	must(t, d.SaveSSHKey(pemBytes))
	hostPEM, hostLine, err := local.NewSSHKey("host")
	must(t, err)
	hostPub, _, _, _, err := ssh.ParseAuthorizedKey(hostLine)
	must(t, err)
	must(t, d.SavePinnedHostKey(hostPub))
	_, err = d.WriteKnownHosts([]string{"ec2-1-2-3-4.compute.amazonaws.com"}, hostPub)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, ".leaky.lock"), nil, 0o600))

	clean := newRunScan()
	clean.harvest(root)
	clean.record("mlstack up (stderr)", "• creating IAM user mlstack-leaky\n• pinned SSH host key "+ssh.FingerprintSHA256(hostPub)+"\n")
	if problems, stats := clean.leaks(); len(problems) != 0 || clean.sc.Len() < 5 {
		t.Fatalf("a clean run: %s\n%s", stats, strings.Join(problems, "\n"))
	}

	r := newRunScan()
	r.harvest(root)
	r.addKey("the server's host key", hostPEM)
	late := &sshdtest.SyncBuffer{}
	r.recordLive("interrupted up (stdout)", late)
	planted := map[string]func(){ // label that must be reported → how it is planted
		"mlstack up (stderr)": func() { r.record("mlstack up (stderr)", "retrying with pw="+url.QueryEscape(st.MLflowPassword)) },
		"interrupted up (stdout)": func() { // written after it was recorded: live outputs are read at the end
			fmt.Fprintf(late, "debug: %s\n", base64.StdEncoding.EncodeToString([]byte("key="+st.SecretAccessKey)))
		},
		"file " + d.KnownHostsFile(): func() { appendFile(t, d.KnownHostsFile(), "# "+st.FlaskSecretKey[:14]+"\n") },
		"file " + filepath.Join(root, ".leaky.lock"): func() {
			appendFile(t, filepath.Join(root, ".leaky.lock"), hex.EncodeToString([]byte(st.MLflowPassword)))
		},
		"file " + filepath.Join(d.Path(), "debug.log"): func() { appendFile(t, filepath.Join(d.Path(), "debug.log"), string(pemBytes)) },
		"terminal: mlstack ssh":                        func() { r.record("terminal: mlstack ssh", string(hostPEM)) },
	}
	for _, plant := range planted {
		plant()
	}
	r.harvest(root) // the files as they are now
	problems, _ := r.leaks()
	for label := range planted {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, label+", line") }) {
			t.Errorf("the leak planted in %s was not found; found:\n%s", label, strings.Join(problems, "\n"))
		}
	}
	for _, p := range problems {
		if strings.Contains(p, st.MLflowPassword) || strings.Contains(p, st.SecretAccessKey) {
			t.Errorf("a finding shows the secret: %s", p)
		}
	}

	// A state dir whose secrets cannot be read fails the scan.
	must(t, os.WriteFile(filepath.Join(d.Path(), "state.json"), []byte("{"), 0o600))
	broken := newRunScan()
	broken.harvest(root)
	if problems, _ := broken.leaks(); !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, "cannot scan") }) {
		t.Error("a state.json that cannot be read went unnoticed: its secrets would not be scanned for")
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	must(t, err)
	_, err = f.WriteString(text)
	must(t, err)
	must(t, f.Close())
}
