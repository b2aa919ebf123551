package cloudinit

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/testenv"

	"github.com/mlstack/mlstack/templates"
)

// TestMLflowServerSmoke runs the rendered server for real: the unit's
// ExecStart and Environment= lines with the rendered mlstack_mlflow.py and
// mlflow.env (read the way systemd reads them), the allowed-hosts file that
// allowed-hosts.sh writes from a fake IMDS, and what mlstack_keys.py makes
// from SSM secrets in moto (basic-auth config, secrets env file, TLS key and
// certificate), against a venv holding the pinned MLflow: one process
// serves HTTPS with the published certificate, auth, the Host check and the
// UI's origins hold. It is opt-in because it
// needs that venv (about 1 GB of wheels):
//
//	python3 -m venv /tmp/mlflow-venv
//	/tmp/mlflow-venv/bin/pip install "mlflow[auth]==3.17.2" boto3
//	MLSTACK_TEST_MLFLOW_VENV=/tmp/mlflow-venv go test ./cloudinit -run Smoke
func TestMLflowServerSmoke(t *testing.T) {
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; scripts/mlflow-venv.sh makes one)")
	}
	needTool(t, "curl")
	if out, err := exec.Command(filepath.Join(venv, "bin", "mlflow"), "--version").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), DefaultMLflowVersion) {
		t.Fatalf("%s does not hold MLflow %s: %v %s", venv, DefaultMLflowVersion, err, out)
	}

	p := validParams()
	c := parse(t, render(t, p))
	dir := t.TempDir()
	keys := newKeysRig(t)
	// Move the instance's /var/lib/mlflow and /run/mlflow into temp dirs.
	relocate := func(s string) string {
		s = strings.ReplaceAll(s, "/var/lib/mlflow/tls", keys.tls)
		s = strings.ReplaceAll(s, "/var/lib/mlflow", dir)
		return strings.ReplaceAll(s, "/run/mlflow", keys.run)
	}
	appDir := filepath.Join(dir, "lib")
	if err := os.Mkdir(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appDir, "mlstack_mlflow.py"), []byte(c.file(t, "/usr/local/lib/mlstack/mlstack_mlflow.py").Content), 0o644); err != nil {
		t.Fatal(err)
	}
	unit := c.file(t, "/etc/systemd/system/mlflow.service").Content
	// The unit's environment: its Environment= lines, then the files in order.
	env := map[string]string{}
	for k, v := range unitEnv(unit) {
		env[k] = relocate(v)
	}
	for k, v := range parseSystemdEnv(c.file(t, "/etc/mlflow/mlflow.env").Content) {
		env[k] = relocate(v)
	}

	const dns, ip = "ec2-54-1-2-3.compute-1.amazonaws.com", "54.1.2.3"
	imds := httptest.NewServer(&fakeIMDS{hostname: dns, ipv4: ip})
	defer imds.Close()
	script := filepath.Join(dir, "allowed-hosts.sh")
	src, err := templates.FS.ReadFile("allowed-hosts.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, src, 0o755); err != nil {
		t.Fatal(err)
	}
	hostsFile := filepath.Join(dir, "allowed-hosts.env")
	cmd := exec.Command("sh", script, hostsFile)
	cmd.Env = append(os.Environ(), "MLSTACK_IMDS_ENDPOINT="+imds.URL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("allowed-hosts.sh: %v\n%s", err, out)
	}
	hosts, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range parseSystemdEnv(string(hosts)) {
		env[k] = v
	}

	// The second ExecStartPre: secrets from SSM, the TLS key and certificate.
	password, secretKey := `a'b"c$d\e%f#g;h`+"`x`", `k'e"y$HOME\%(x)s-0123456789`
	keys.putSecrets(password, secretKey)
	keys.dns, keys.ip = env["MLSTACK_PUBLIC_DNS"], env["MLSTACK_PUBLIC_IP"]
	keys.destination = env["_MLFLOW_SERVER_ARTIFACT_DESTINATION"]
	if out, err := keys.exec(); err != nil {
		t.Fatalf("mlstack_keys.py: %v\n%s", err, out)
	}
	ini, _ := keys.readFile("basic_auth.ini")
	must(t, os.WriteFile(filepath.Join(keys.run, "basic_auth.ini"), []byte(relocate(ini)), 0o600))
	// EnvironmentFile= lines override Environment= ones, as in systemd.
	for _, f := range []string{"secrets.env", "artifacts.env"} {
		content, _ := keys.readFile(f)
		for k, v := range parseSystemdEnv(content) {
			env[k] = v
		}
	}
	certPEM, _ := keys.published("tls-cert")

	// The unit's ExecStart, on loopback and a free port instead of 0.0.0.0:5000.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	args := strings.Fields(strings.ReplaceAll(unitValue(t, unit, "ExecStart"), "\\\n", " "))
	for i, a := range args {
		switch a {
		case "5000":
			a = port
		case "0.0.0.0":
			a = "127.0.0.1"
		case "/usr/local/lib/mlstack":
			a = appDir
		}
		args[i] = relocate(strings.Replace(a, "/opt/mlflow", venv, 1))
	}
	server := exec.Command(args[0], args[1:]...)
	server.Dir = dir
	server.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	for k, v := range env {
		server.Env = append(server.Env, k+"="+v)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	server.Stdout, server.Stderr = logFile, logFile
	// Registered before the server starts, so it runs once the server has
	// stopped and flushed its log (cleanups run last-in first-out).
	t.Cleanup(func() { noSecretsIn(t, logPath, password, secretKey) })
	// Stop the whole group, should anything fork.
	if _, err := proctest.Start(t, server, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", b)
		}
	}()

	// HTTPS trusting the published certificate alone, checked for the
	// public name, as mlstack and the MLflow client do.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(certPEM)) {
		t.Fatal("the published certificate does not parse")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: dns, MinVersion: tls.VersionTLS12}}}
	base := "https://127.0.0.1:" + port
	user := p.AdminUsername // who call signs in as
	call := func(method, path, host, password, body, origin string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if password != "" {
			req.SetBasicAuth(user, password)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		if code, _ := call("GET", "/health", "localhost", "", "", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not answer /health within 2 minutes")
		}
	}

	// One process serves: nothing forked a worker or waits for one.
	if kids := childrenOf(t, server.Process.Pid); len(kids) > 0 {
		t.Errorf("the server process %d has children %v, want none", server.Process.Pid, kids)
	}

	// No clear text: plain HTTP gets no answer from the TLS port.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the server answers plain HTTP")
		}
	}

	pw := password
	const search = "/api/2.0/mlflow/experiments/search?max_results=1"
	const uiSearch = "/ajax-api/2.0/mlflow/runs/search"
	for _, tt := range []struct {
		name, method, path, host, password, body, origin string
		want                                             int
		inBody                                           string
	}{
		{"dns:5000", "GET", search, dns + ":5000", pw, "", "", 200, ""},
		{"dns", "GET", search, dns, pw, "", "", 200, ""},
		{"ip:5000", "GET", search, ip + ":5000", pw, "", "", 200, ""},
		{"localhost", "GET", search, "localhost:5000", pw, "", "", 200, ""},
		{"wrong password", "GET", search, dns, "wrong-password-123", "", "", 401, ""},
		{"no credentials", "GET", search, dns, "", "", "", 401, ""},
		{"foreign host", "GET", search, "evil.example.com", pw, "", "", 403, ""},
		{"foreign host:5000", "GET", search, "evil.example.com:5000", pw, "", "", 403, ""},
		{"create experiment", "POST", "/api/2.0/mlflow/experiments/create", dns, pw, `{"name":"smoke"}`, "", 200, ""},
		{"artifact root", "GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke", dns, pw, "", "", 200,
			`"artifact_location": "s3://` + p.Bucket + `/artifacts/`},
		// The UI's run list: a browser at the tracking URI sends its origin.
		{"UI at the DNS name", "POST", uiSearch, dns + ":5000", pw, `{"experiment_ids":["0"]}`, "https://" + dns + ":5000", 200, ""},
		{"UI at the IP", "POST", uiSearch, ip + ":5000", pw, `{"experiment_ids":["0"]}`, "https://" + ip + ":5000", 200, ""},
		{"foreign origin", "POST", uiSearch, dns + ":5000", pw, `{"experiment_ids":["0"]}`, "https://evil.example.com", 403, ""},
	} {
		code, body := call(tt.method, tt.path, tt.host, tt.password, tt.body, tt.origin)
		if code != tt.want || !strings.Contains(body, tt.inBody) {
			t.Errorf("%s: %s %s (Host %s) = %d %.300s; want %d with %q", tt.name, tt.method, tt.path, tt.host, code, body, tt.want, tt.inBody)
		}
	}
	teamRoles(t, func(as, password, method, path, body string) (int, string) {
		user = as
		return call(method, path, dns, password, body, "")
	}, pw)
}

// teamRoles: what the basic-auth config mlstack_keys.py writes lets each
// role do. Two non-admin users, made by the admin: each reads and logs
// runs into the other's experiment (default_permission EDIT), neither can
// delete or manage the other's experiment nor manage users; the creator
// of an experiment may delete it.
func teamRoles(t *testing.T, call func(user, password, method, path, body string) (int, string), adminPW string) {
	t.Helper()
	const api = "/api/2.0/mlflow/"
	const alicePW, bobPW = "alice-password-0123456789", "bob-password-0123456789"
	admin := func(method, path, body string) (int, string) { return call("admin", adminPW, method, api+path, body) }
	alice := func(method, path, body string) (int, string) { return call("alice", alicePW, method, api+path, body) }
	bob := func(method, path, body string) (int, string) { return call("bob", bobPW, method, api+path, body) }
	for _, u := range [][2]string{{"alice", alicePW}, {"bob", bobPW}} {
		if code, body := admin("POST", "users/create", `{"username":"`+u[0]+`","password":"`+u[1]+`"}`); code != 200 {
			t.Fatalf("admin creates user %s: %d %.300s", u[0], code, body)
		}
	}
	code, body := alice("POST", "experiments/create", `{"name":"alices"}`)
	var created struct {
		ID string `json:"experiment_id"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &created) != nil || created.ID == "" {
		t.Fatalf("alice creates an experiment: %d %.300s", code, body)
	}
	exp := `{"experiment_id":"` + created.ID + `"}`
	for _, tt := range []struct {
		name               string
		as                 func(method, path, body string) (int, string)
		method, path, body string
		want               int
	}{
		{"bob sees alice's experiment", bob, "GET", "experiments/get?experiment_id=" + created.ID, "", 200},
		{"bob logs a run into it", bob, "POST", "runs/create", exp, 200},
		{"bob cannot delete it", bob, "POST", "experiments/delete", exp, 403},
		{"bob renames it (EDIT may)", bob, "POST", "experiments/update", `{"experiment_id":"` + created.ID + `","new_name":"bobs"}`, 200},
		{"bob cannot grant himself MANAGE", bob, "POST", "experiments/permissions/create",
			`{"experiment_id":"` + created.ID + `","username":"bob","permission":"MANAGE"}`, 403},
		{"bob cannot make users", bob, "POST", "users/create", `{"username":"mallory","password":"mallory-password-0123"}`, 403},
		{"bob cannot delete users", bob, "DELETE", "users/delete", `{"username":"alice"}`, 403},
		{"bob cannot set alice's password", bob, "PATCH", "users/update-password", `{"username":"alice","password":"taken-over-0123456789"}`, 403},
		{"bob cannot make himself admin", bob, "PATCH", "users/update-admin", `{"username":"bob","is_admin":true}`, 403},
		{"alice deletes her experiment", alice, "POST", "experiments/delete", exp, 200},
	} {
		if code, body := tt.as(tt.method, tt.path, tt.body); code != tt.want {
			t.Errorf("%s: %s %s = %d %.300s; want %d", tt.name, tt.method, tt.path, code, body, tt.want)
		}
	}
}

// childrenOf lists the pids whose parent is pid, from /proc/*/stat.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Fatalf("cannot list /proc: %v", err)
	}
	var kids []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, strings.Fields(string(b))[0])
		}
	}
	return kids
}
