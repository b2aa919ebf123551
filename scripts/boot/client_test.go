//go:build boottest

package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// phaseClient: the real MLflow client with exactly the variables `mlstack
// env` prints logs a run with an artifact into the stack bucket; the
// server's auth and Host checks; the server reads S3 through the role;
// the server's memory after it.
func (b *bootTest) phaseClient(t *testing.T) {
	b.runClient(t)
	b.checkArtifact(t)
	b.checkAuthHosts(t)
	b.checkRoleS3(t)
	b.rss = b.measureRSS(t)
	t.Logf("server memory after the client run: RSS %d MiB (PSS %d MiB)", b.rss.rss, b.rss.pss)
}

// envFile writes what `mlstack env` prints (shell) to work/NAME and
// returns the variables it sets, from `mlstack env --format json`,
// checking both set and clear the same ones.
func (b *bootTest) envFile(t *testing.T, name string, args ...string) map[string]string {
	t.Helper()
	shell := b.mlstack(t, append([]string{"env"}, args...)...)
	if err := os.WriteFile(filepath.Join(b.work, name), []byte(shell), 0o600); err != nil {
		t.Fatal(err)
	}
	var vars map[string]string
	if err := json.Unmarshal([]byte(b.mlstack(t, append([]string{"env", "--format", "json"}, args...)...)), &vars); err != nil {
		t.Fatalf("env --format json: %v", err)
	}
	// A variable the env clears (a caller's AWS_SESSION_TOKEN would spoil
	// the stack's keys) is an `unset` in the shell, "" in JSON.
	var exports, unsets, set, cleared []string
	for _, m := range regexp.MustCompile(`(?m)^export ([A-Za-z0-9_]+)=`).FindAllStringSubmatch(shell, -1) {
		exports = append(exports, m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^unset (.*)$`).FindAllStringSubmatch(shell, -1) {
		unsets = append(unsets, strings.Fields(m[1])...)
	}
	for _, k := range sortedKeys(vars) {
		if vars[k] == "" {
			cleared = append(cleared, k)
			delete(vars, k)
		} else {
			set = append(set, k)
		}
	}
	slices.Sort(exports)
	slices.Sort(unsets)
	if !slices.Equal(exports, set) || !slices.Equal(unsets, cleared) {
		t.Fatalf("env exports %v and unsets %v; env --format json sets %v and clears %v", exports, unsets, set, cleared)
	}
	return vars
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runClient: scripts/boot/client.py logs params, 5 metrics and an artifact
// as alice (up's --user, not the admin) and reads them back.
func (b *bootTest) runClient(t *testing.T) {
	vars := b.envFile(t, "env.sh")
	want := []string{"AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL",
		"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME"}
	if got := sortedKeys(vars); !slices.Equal(got, want) {
		t.Fatalf("mlstack env prints %v, want %v", got, want)
	}
	if vars["MLFLOW_TRACKING_USERNAME"] != "alice" {
		t.Fatalf("the env file signs in as %q, want alice", vars["MLFLOW_TRACKING_USERNAME"])
	}
	b.password = vars["MLFLOW_TRACKING_PASSWORD"]
	var facts struct {
		RunID  string `json:"run_id"`
		Bucket string `json:"bucket"`
		Key    string `json:"key"`
	}
	b.python(t, "env.sh", "client", &facts)
	b.runID, b.bucket, b.artifactKey = facts.RunID, facts.Bucket, facts.Key
	t.Logf("run %s logged params, 5 metrics, an artifact; read back", b.runID)
}

// python runs scripts/boot/NAME.py with the MLflow venv's Python and
// exactly the variables the env file sets (sourced, as a user does),
// nothing else of this process; the JSON on its last stdout line goes
// to facts. Its stderr is in work/NAME.log.
func (b *bootTest) python(t *testing.T, envFile, name string, facts any) {
	t.Helper()
	logPath := filepath.Join(b.work, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("sh", "-c", `. "$1" && exec "$2" "$3"`, "sh",
		filepath.Join(b.work, envFile), filepath.Join(b.venv, "bin", "python"), filepath.Join(b.repo, "scripts", "boot", name+".py"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + filepath.Join(b.work, "home")}
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, log
	if err := b.wait(t, b.startProc(t, t, cmd), 10*time.Minute); err != nil {
		t.Fatalf("%s.py: %v\n%s", name, err, b.tail(logPath, 40))
	}
	t.Log(b.tail(logPath, 6))
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dec := json.NewDecoder(strings.NewReader(lines[len(lines)-1]))
	if err := dec.Decode(facts); err != nil {
		t.Fatalf("%s.py printed no JSON facts: %v", name, err)
	}
}

// checkArtifact: the artifact is in the stack bucket.
func (b *bootTest) checkArtifact(t *testing.T) {
	if want := "mlstack-" + bootStack + "-123456789012-" + bootRegion + "-an"; b.bucket != want {
		t.Fatalf("artifacts go to bucket %s, not the stack's %s", b.bucket, want)
	}
	b.hasObject(t, "artifacts/", b.artifactKey)
}

// hasObject fails t unless key is in the stack bucket.
func (b *bootTest) hasObject(t *testing.T, prefix, key string) {
	t.Helper()
	keys, err := objectKeys(context.Background(), b.aws, b.bucket, prefix)
	if err != nil || !slices.Contains(keys, key) {
		t.Fatalf("s3://%s/%s is not in moto (%v); %s holds %v", b.bucket, key, err, prefix, keys)
	}
}

// dialInstance reaches the instance's public DNS name and IP, and
// localhost, at 127.0.0.1 (the container shares the host's network).
func (b *bootTest) dialInstance(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == b.inst.dns || host == b.inst.ip || host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
}

func poolOf(certPEM []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// call is one request to the server: its status (0: no answer, e.g. the
// TLS handshake failed) and body.
func (b *bootTest) call(t *testing.T, method, url, user, password, host string) (int, string) {
	t.Helper()
	pinned, err := os.ReadFile(b.cert)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := b.client(pinned, 20*time.Second).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// expect fails t unless the request answers one of the codes.
func (b *bootTest) expect(t *testing.T, what string, codes []int, method, url, user, password, host string) string {
	t.Helper()
	code, body := b.call(t, method, url, user, password, host)
	if !slices.Contains(codes, code) {
		t.Fatalf("%s: HTTP %d, want %v: %.200s", what, code, codes, b.mask(body))
	}
	t.Logf("%s: HTTP %d", what, code)
	return body
}

// checkAuthHosts: 401 without or with wrong credentials; the public DNS
// name and IP as Host answer, a foreign Host does not; the certificate is
// checked (a name it lacks fails the handshake); plain HTTP gets nothing.
// And the server runs the MLflow the stack asked for.
func (b *bootTest) checkAuthHosts(t *testing.T) {
	api := "/api/2.0/mlflow/experiments/search?max_results=1"
	dnsURL, ipURL := "https://"+b.inst.dns+":5000", "https://"+b.inst.ip+":5000"
	get, ok := http.MethodGet, []int{http.StatusOK}
	refused := []int{http.StatusBadRequest, http.StatusForbidden}
	b.expect(t, "no credentials", []int{401}, get, dnsURL+api, "", "", "")
	b.expect(t, "wrong password", []int{401}, get, dnsURL+api, "admin", "wrong-password-123", "")
	b.expect(t, "public DNS Host", ok, get, dnsURL+api, "alice", b.password, "")
	b.expect(t, "public IP Host", ok, get, ipURL+api, "alice", b.password, "")
	b.expect(t, "foreign Host", refused, get, dnsURL+api, "alice", b.password, "attacker.example:5000")
	b.expect(t, "foreign Host, no port", refused, get, dnsURL+api, "alice", b.password, "attacker.example")
	b.expect(t, "a name the certificate lacks", []int{0}, get, "https://localhost:5000"+api, "alice", b.password, "")
	b.expect(t, "plain HTTP", []int{0, http.StatusBadRequest}, get, "http://"+b.inst.dns+":5000/health", "", "", "")
	b.checkVersion(t)
}

// checkVersion: the server answers /version with the MLflow the stack runs.
func (b *bootTest) checkVersion(t *testing.T) {
	got := b.expect(t, "MLflow version", []int{http.StatusOK}, http.MethodGet, "https://"+b.inst.dns+":5000/version", "alice", b.password, "")
	if strings.TrimSpace(got) != b.mlflow {
		t.Fatalf("the server runs MLflow %q, want %s", got, b.mlflow)
	}
}

// checkRoleS3: the server reads the artifact from S3 with the instance
// role's credentials from IMDSv2 (boto3 on the instance says where its
// credentials come from: scripts/boot/role.py).
func (b *bootTest) checkRoleS3(t *testing.T) {
	body := b.expect(t, "get-artifact", []int{http.StatusOK}, http.MethodGet,
		"https://"+b.inst.dns+":5000/get-artifact?path=notes.txt&run_uuid="+b.runID, "alice", b.password, "")
	if body != "mlstack boot test artifact\n" {
		t.Fatalf("the server served %q for the artifact", body)
	}
	script, err := os.Open(filepath.Join(b.repo, "scripts", "boot", "role.py"))
	if err != nil {
		t.Fatal(err)
	}
	defer script.Close()
	out, err := b.inContainer(t, script, "env", "-i", "PATH=/usr/bin:/bin", "AWS_DEFAULT_REGION="+bootRegion,
		"/opt/mlflow/bin/python", "-", *b.inst.role.creds.AccessKeyId)
	if err != nil {
		t.Fatalf("boto3 on the server: %v", err)
	}
	if got := strings.TrimSpace(out); got != "iam-role True" {
		t.Fatalf("boto3 on the server got credentials %q, want the instance role's from IMDS (iam-role True)", got)
	}
}

// rssFacts is the memory of the server's processes (scripts/boot/rss.sh).
type rssFacts struct{ rss, pss, procs int }

// measureRSS: the memory of every process of the service user mlflow.
func (b *bootTest) measureRSS(t *testing.T) rssFacts {
	script, err := os.Open(filepath.Join(b.repo, "scripts", "boot", "rss.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer script.Close()
	out, err := b.inContainer(t, script, "sh", "-s")
	if err != nil {
		t.Fatalf("rss.sh: %v", err)
	}
	var r rssFacts
	if _, err := fmt.Sscan(out, &r.rss, &r.pss, &r.procs); err != nil {
		t.Fatalf("rss.sh printed %q: %v", out, err)
	}
	return r
}
