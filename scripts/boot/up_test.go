//go:build boottest

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// phaseUp: `mlstack up` in the background; the instance it launched booted
// under cloud-init and systemd; the server healthy; up's result; what the
// boot left on the instance.
func (b *bootTest) phaseUp(t *testing.T) {
	if b.cfg.db == "postgres" {
		b.launchUp(t, "--db", "postgres", "--db-class", "db.t4g.micro")
	} else {
		b.launchUp(t)
	}
	b.findInstance(t)
	b.startIMDS(t)
	b.bootContainer(t)
	b.bootToHealthy = b.waitHealthy(t)
	t.Logf("healthy %.1f s after boot", b.bootToHealthy.Seconds())
	b.checkUpResult(t)
	b.checkCloudInit(t)
	b.checkInstall(t)
}

// launchUp starts `mlstack up --output json` in the background, with the
// flags every up of the test gives and more.
func (b *bootTest) launchUp(t *testing.T, more ...string) {
	args := append([]string{"up", "--allow-cidr", "127.0.0.1/32", "--timeout", "15m", "--user", "alice",
		"--mlflow-version", b.mlflow, "--output", "json"}, more...)
	b.launch(t, args...)
}

// launch starts an mlstack command in the background (up, upgrade): its
// stdout in up.json, its stderr in up.log.
func (b *bootTest) launch(t *testing.T, args ...string) {
	args = append(args, "--stack", bootStack, "--state-dir", b.state)
	t.Logf("mlstack %s (in the background)", strings.Join(args, " "))
	b.upJSON = filepath.Join(b.work, "up.json")
	out, err := os.Create(b.upJSON)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	log, err := os.Create(filepath.Join(b.work, "up.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(b.bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = b.cliEnv(), out, log
	b.up = b.startProc(t, b.t, cmd)
}

// waitUp waits for the background command and fails t unless it exited 0.
func (b *bootTest) waitUp(t *testing.T) {
	t.Helper()
	err := b.wait(t, b.up, 20*time.Minute)
	t.Log(b.tail(filepath.Join(b.work, "up.log"), 12))
	if err != nil && b.takenLogin != "" {
		b.followLoginHint(t, err)
		return
	}
	if err != nil {
		t.Fatalf("mlstack %s: %v", b.up.cmd.Args[1], err)
	}
}

// followLoginHint: up made the stack, then refused to reset the password
// of b.takenLogin, a user the restored server has with a password this
// machine no longer holds (down --keep-data took the local state), and
// exited 2 naming `mlstack users passwd NAME`: run it as printed, which
// gives the user a new password here and rewrites the env file.
func (b *bootTest) followLoginHint(t *testing.T, err error) {
	t.Helper()
	name := b.takenLogin
	b.takenLogin = ""
	raw, _ := os.ReadFile(filepath.Join(b.work, "up.log"))
	log := strings.Join(strings.Fields(string(raw)), " ") // as one line, however it wrapped
	hint := "`mlstack users passwd --stack " + bootStack + " --state-dir " + b.state + " " + name + "`"
	if !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(log, "up does not reset an existing user's password") ||
		!strings.Contains(log, hint) {
		t.Log(log)
		t.Fatalf("mlstack up: %v, want exit 2 refusing to reset %s's password with the hint %s", err, name, hint)
	}
	b.mlstack(t, "users", "passwd", name)
	t.Logf("up kept %s's password on the restored server and said to run %s: ran it", name, hint)
}

// stackJSON is the part of the stack schema (docs/commands.md) the test reads.
type stackJSON struct {
	Stack       string `json:"stack"`
	TrackingURI string `json:"tracking_uri"`
	Health      string `json:"health"`
	Instance    *struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		State string `json:"state"`
	} `json:"instance"`
	Artifacts    string  `json:"artifacts"`
	Database     string  `json:"database"`
	NewestBackup *string `json:"newest_backup"`
	Resources    []struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"resources"`
}

// upResult is the stack the background up printed, checked against the
// instance the test booted: running, healthy, at its public DNS name.
func (b *bootTest) upResult(t *testing.T) stackJSON {
	t.Helper()
	data, err := os.ReadFile(b.upJSON)
	if err != nil {
		t.Fatal(err)
	}
	return b.checkStack(t, data)
}

func (b *bootTest) checkStack(t *testing.T, data []byte) stackJSON {
	t.Helper()
	var s stackJSON
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("the stack JSON: %v\n%s", err, b.mask(string(data)))
	}
	want := "https://" + b.inst.dns + ":5000"
	if s.Stack != bootStack || s.TrackingURI != want || s.Health != "healthy" {
		t.Fatalf("stack %q at %q, health %q; want %s at %s, healthy", s.Stack, s.TrackingURI, s.Health, bootStack, want)
	}
	if s.Instance == nil || s.Instance.ID != b.inst.id || s.Instance.State != "running" {
		t.Fatalf("the stack's instance is %+v, want %s running", s.Instance, b.inst.id)
	}
	if s.Database != b.cfg.db {
		t.Fatalf("the stack's tracking data is in %q, want %s", s.Database, b.cfg.db)
	}
	return s
}

// findInstance: the stack's running instance in moto, its user-data, and
// what IMDS serves it (credentials of its role, from sts:AssumeRole).
func (b *bootTest) findInstance(t *testing.T) {
	f, err := launched(context.Background(), b.aws, bootStack, 2*time.Minute)
	if err != nil {
		t.Log(b.tail(filepath.Join(b.work, "up.log"), 40))
		t.Fatalf("no instance appeared in moto: %v", err)
	}
	b.inst = f
	token := *f.role.creds.SessionToken
	b.roleTokens = append(b.roleTokens, token)
	b.addSecrets(t, *f.role.creds.SecretAccessKey, token)
	b.addStateSecrets(t)
	writeFiles(t, map[string][]byte{filepath.Join(b.work, "user-data"): f.userData, filepath.Join(b.work, "aemm.json"): f.aemmJSON})
	t.Logf("instance %s: %s (%s), role %s, user-data %d bytes (%d unpacked)", f.id, f.dns, f.ip, f.role.name, len(f.userData), f.unpacked)
}

// addStateSecrets records the secrets of the state dir's state.json: the
// access key's secret, the admin's password, the Flask key, every
// MLflow user's password.
func (b *bootTest) addStateSecrets(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(b.state, bootStack, "state.json"))
	if err != nil {
		t.Fatalf("the stack's state: %v", err)
	}
	var st struct {
		SecretAccessKey string            `json:"secret_access_key"`
		Password        string            `json:"mlflow_password"`
		Flask           string            `json:"flask_secret_key"`
		Users           map[string]string `json:"mlflow_users"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("the stack's state.json: %v", err)
	}
	b.addSecrets(t, st.SecretAccessKey, st.Password, st.Flask)
	for _, pw := range st.Users {
		b.addSecrets(t, pw)
	}
}

// startIMDS: ec2-metadata-mock on 169.254.169.254:80 with the instance's
// values (IMDSv2 required), and its public DNS name at 127.0.0.1 in
// /etc/hosts. Both go when the test ends, or at the next clean stop.
func (b *bootTest) startIMDS(t *testing.T) {
	if out, _ := exec.Command("ip", "-4", "addr", "show", "dev", "lo").Output(); !bytes.Contains(out, []byte(" "+imdsIP+"/32 ")) {
		b.run(t, time.Minute, exec.Command("ip", "addr", "add", imdsIP+"/32", "dev", "lo"))
		b.t.Cleanup(func() { exec.Command("ip", "addr", "del", imdsIP+"/32", "dev", "lo").Run() })
	}
	log, err := os.Create(filepath.Join(b.work, "aemm.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(b.aemm, "-c", filepath.Join(b.work, "aemm.json"), "-n", imdsIP, "-p", "80", "-I")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = b.work, []string{"HOME=" + b.work, "PATH=/usr/bin:/bin"}, log, log
	b.imds = b.startProc(t, b.t, cmd)
	b.checkIMDS(t)
	b.addHostsLine(t)
}

// checkIMDS: the emulator gives IMDSv2 tokens, the instance's public name
// and role, and nothing without a token.
func (b *bootTest) checkIMDS(t *testing.T) {
	var token string
	for i := 0; i < 50 && token == ""; i++ {
		req, _ := http.NewRequest(http.MethodPut, "http://"+imdsIP+"/latest/api/token", nil)
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
		token, _ = httpText(req)
		if token == "" {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if token == "" {
		t.Fatalf("ec2-metadata-mock gives no IMDSv2 token\n%s", b.tail(filepath.Join(b.work, "aemm.log"), 20))
	}
	get := func(path, token string) (string, int) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+imdsIP+"/latest/meta-data/"+path, nil)
		if token != "" {
			req.Header.Set("X-aws-ec2-metadata-token", token)
		}
		return httpText(req)
	}
	if got, _ := get("public-hostname", token); got != b.inst.dns {
		t.Fatalf("IMDS serves public-hostname %q, want %q", got, b.inst.dns)
	}
	if got, _ := get("iam/security-credentials/", token); got != b.inst.role.name {
		t.Fatalf("IMDS serves role %q, want %q", got, b.inst.role.name)
	}
	if _, code := get("public-hostname", ""); code != http.StatusUnauthorized {
		t.Fatalf("IMDS answers %d without a token: IMDSv2 must be required", code)
	}
}

// httpText does req and returns the body when the answer is 200, and the status.
func httpText(req *http.Request) (string, int) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	return string(body), resp.StatusCode
}

// addHostsLine maps the public DNS name to 127.0.0.1, for up's health
// wait and the MLflow clients; removeHostsLine takes it out again.
func (b *bootTest) addHostsLine(t *testing.T) {
	line := fmt.Sprintf("127.0.0.1 %s # mlstack-boot-test %d", b.inst.dns, os.Getpid())
	f, err := os.OpenFile("/etc/hosts", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b.hostsLine == "" {
		b.t.Cleanup(func() { b.removeHostsLine(b.t) })
	}
	b.hostsLine = line
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
}

// removeHostsLine rewrites /etc/hosts in place (not a rename: it may be
// a bind mount) without the test's line.
func (b *bootTest) removeHostsLine(t testing.TB) {
	if b.hostsLine == "" {
		return
	}
	data, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Error(err)
		return
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(l, "\n") != b.hostsLine {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile("/etc/hosts", []byte(strings.Join(kept, "")), 0o644); err != nil {
		t.Error(err)
	}
	b.hostsLine = ""
}

// certOf is the certificate a TLS server at 127.0.0.1:5000 serves for name.
func certOf(name string) ([]byte, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:5000",
		&tls.Config{ServerName: name, InsecureSkipVerify: true}) // read it, then compare it to the pinned one
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	return certs[0].Raw, nil
}

// fingerprint is a certificate's SHA-256, in hex.
func fingerprint(der []byte) string { return fmt.Sprintf("%X", sha256.Sum256(der)) }

// pemDER is the DER of the first PEM block in data.
func pemDER(data []byte) []byte {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil
	}
	return blk.Bytes
}
