package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/browsertest"
	"github.com/mlstack/mlstack/internal/mlflowtest"
	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/local/envfile"
)

// uiState writes stack demo's local files for srv into a fresh state dir:
// the env file (tracking URI, login, pinned certificate) and state.json,
// whose password the secret scan then looks for everywhere.
func uiState(t *testing.T, uri, user, password string, certPEM []byte) string {
	t.Helper()
	root := t.TempDir()
	dir := local.StackDir(root, "demo")
	if err := dir.Save(&local.Secrets{Stack: "demo", MLflowUser: user, MLflowPassword: password}); err != nil {
		t.Fatal(err)
	}
	vars := []envfile.Var{{Name: "MLFLOW_TRACKING_URI", Value: uri},
		{Name: "MLFLOW_TRACKING_USERNAME", Value: user}, {Name: "MLFLOW_TRACKING_PASSWORD", Value: password}}
	if certPEM != nil {
		path := filepath.Join(dir.Path(), "server.crt")
		if err := os.WriteFile(path, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		vars = append(vars, envfile.Var{Name: "MLFLOW_TRACKING_SERVER_CERT_PATH", Value: path})
	}
	if err := dir.WriteEnv(vars); err != nil {
		t.Fatal(err)
	}
	harvestSecrets(root)
	return root
}

// connectProxy is an HTTPS proxy (CONNECT) that takes host to 127.0.0.1, so
// the mlstack process reaches the made-up public name through the
// HTTPS_PROXY it honours, with no /etc/hosts edit. TLS stays end to end.
func connectProxy(t *testing.T, host string) (url string, tunnels *atomic.Int32) {
	t.Helper()
	tunnels = &atomic.Int32{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, port, err := net.SplitHostPort(r.Host)
		if r.Method != http.MethodConnect || err != nil || h != host {
			http.Error(w, "only CONNECT to "+host, http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		tunnels.Add(1)
		go func() { _, _ = io.Copy(up, rw); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(ts.Close)
	return ts.URL, tunnels
}

// startUI runs the built mlstack ui and returns the URL it printed; its
// outputs go to the secret scan. The URL's token is a secret of the scan
// like the password: it may be in stdout's first line alone, the line the
// user needs, which the scan does not see.
func startUI(t *testing.T, env []string, args ...string) (url string, exited <-chan struct{}, cmd *exec.Cmd, stderr *sshdtest.SyncBuffer) {
	t.Helper()
	cmd = exec.Command(binary(t), append([]string{"ui"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, stderr := &sshdtest.SyncBuffer{}, &sshdtest.SyncBuffer{}
	cmd.Stderr = stderr
	recordLive("mlstack ui (stdout after the URL)", out)
	recordLive("mlstack ui (stderr)", stderr)
	if exited, err = proctest.Start(t, cmd, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("mlstack ui printed no URL: %v\nstderr:\n%s", err, stderr)
	}
	go func() { _, _ = io.Copy(out, r) }()
	u, err := neturl.Parse(strings.TrimSpace(line))
	if err != nil || !seen.addSecret("mlstack ui's token", u.Query().Get("mlstack-token")) {
		t.Fatalf("mlstack ui's first line is not a URL with a token of 8 bytes or more")
	}
	return strings.TrimSpace(line), exited, cmd, stderr
}

// TestUIInBrowser runs `mlstack ui` as a user does, against the real MLflow
// set up as an instance runs it (TLS for its public name, basic auth,
// --allowed-hosts and the CORS origin of that name): chromium at the
// printed loopback URL, with no pin and no credentials, sees the
// experiment, the run and its metric, and is never asked for a password.
// Ctrl-C stops the proxy with exit 0.
func TestUIInBrowser(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath(browsertest.Chromium); err != nil {
		testenv.Missing(t, "no chromium (Debian's chromium package; .ci/run installs it)")
	}
	srv := mlflowtest.Start(t, mlflowtest.Options{CORS: true})
	recordLive("MLflow server log of "+t.Name(), srv.Log)
	seed := mlflowtest.Seed{Experiment: "ui-exp", Run: "ui-run", Metric: "rmse", Value: 0.125}
	srv.Seed(t, seed)
	root := uiState(t, srv.URI, srv.User, srv.Password, srv.CertPEM)
	proxyURL, tunnels := connectProxy(t, srv.Host)

	url, exited, cmd, stderr := startUI(t, []string{"HTTPS_PROXY=" + proxyURL, "https_proxy=", "NO_PROXY=", "no_proxy="},
		"--stack", "demo", "--state-dir", root, "--no-browser")
	self, ok := strings.CutPrefix(strings.Split(url, "/?")[0], "http://")
	if !strings.HasPrefix(self, "127.0.0.1:") || !ok {
		t.Fatal("mlstack ui printed no http://127.0.0.1:PORT/?mlstack-token=… URL")
	}
	// Another local user knows the port but not the token.
	resp, err := http.Get("http://" + self + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("without the token: %d, want 403", resp.StatusCode)
	}
	res, err := browsertest.Check(t.Context(), browsertest.Options{}, browsertest.UICheck{URI: url,
		Experiment: seed.Experiment, Run: seed.Run, Metric: seed.Metric, Value: seed.Value, OutDir: testenv.ArtifactDir(t)})
	if err != nil {
		t.Fatalf("%v\nmlstack ui said:\n%s", err, stderr)
	}
	t.Logf("the UI through mlstack ui: steps %v, runs/search %v; screenshot %s", res.Steps, res.RunsSearch, res.Screenshot)
	if res.AuthChallenges != 0 {
		t.Errorf("the browser was asked for a password %d time(s)", res.AuthChallenges)
	}
	if tunnels.Load() == 0 {
		t.Error("mlstack ui did not reach the server through HTTPS_PROXY")
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("mlstack ui still runs 10 s after Ctrl-C")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(stderr.String(), "stopped serving") {
		t.Errorf("after Ctrl-C: exit %d, want 0\n%s", code, stderr)
	}
}

// TestUIRefusals: mlstack ui exits before serving anything when it cannot
// do so safely.
func TestUIRefusals(t *testing.T) {
	// Not parallel: it runs the CLI, and two urfave/cli apps running at once
	// race on the package-level help flag that every app applies.
	httpRoot := uiState(t, "http://ec2-203-0-113-10.example:5000", "admin", "ui-Refused-Password-42", nil)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"plain http", []string{"--state-dir", httpRoot}, exitFailure, "clear text"},
		{"a port out of range", []string{"--state-dir", httpRoot, "--port", "70000"}, exitUsage, "--port 70000"},
		{"an argument", []string{"--state-dir", httpRoot, "0.0.0.0"}, exitUsage, "every option is a flag"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"mlstack", "ui", "--stack", "demo", "--no-browser"}, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, args, strings.NewReader(""), &out, &errb)
			recordOutput(strings.Join(args, " ")+" (stdout)", out.String())
			recordOutput(strings.Join(args, " ")+" (stderr)", errb.String())
			if code != tt.code || !strings.Contains(errb.String(), tt.want) || out.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d saying %q", code, out.String(), errb.String(), tt.code, tt.want)
			}
		})
	}
}
