package cloudinit

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/templates"
)

// serverRig runs the rendered server on this machine the way mlflow.service
// does on an instance, with the venv of the pinned MLflow (scripts/
// mlflow-venv.sh) for /opt/mlflow. The instance's /var/lib/mlflow and
// /run/mlflow move into temp dirs, its 0.0.0.0:5000 to a free loopback port;
// IMDS is a fake, SSM is moto (through the keys rig). Nothing else changes:
// the environment is the unit's Environment= and EnvironmentFile= lines,
// read as systemd reads them, and nothing more.
type serverRig struct {
	t       *testing.T
	venv    string
	c       cloudConfig
	unit    string
	dir     string   // the instance's /var/lib/mlflow
	appDir  string   // its /usr/local/lib/mlstack
	keys    *keysRig // its /run/mlflow (keys.run), TLS dir and SSM parameters
	imdsURL string
	port    string // where 5000 goes
}

func newServerRig(t *testing.T, p Params, dns, ip string) *serverRig {
	t.Helper()
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; scripts/mlflow-venv.sh makes one)")
	}
	needTool(t, "curl")
	if out, err := exec.Command(filepath.Join(venv, "bin", "mlflow"), "--version").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), DefaultMLflowVersion) {
		t.Fatalf("%s does not hold MLflow %s: %v %s", venv, DefaultMLflowVersion, err, out)
	}
	r := &serverRig{t: t, venv: venv, c: parse(t, render(t, p)), dir: t.TempDir(), keys: newKeysRig(t)}
	r.unit = r.c.file(t, "/etc/systemd/system/mlflow.service").Content
	r.appDir = filepath.Join(r.dir, "lib")
	must(t, os.Mkdir(r.appDir, 0o755))
	must(t, os.WriteFile(filepath.Join(r.appDir, "mlstack_mlflow.py"), []byte(r.c.file(t, "/usr/local/lib/mlstack/mlstack_mlflow.py").Content), 0o644))
	imds := httptest.NewServer(&fakeIMDS{hostname: dns, ipv4: ip})
	t.Cleanup(imds.Close)
	r.imdsURL = imds.URL
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	r.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return r
}

// relocate moves the instance's paths in s into the rig's dirs.
func (r *serverRig) relocate(s string) string {
	s = strings.ReplaceAll(s, "/var/lib/mlflow/tls", r.keys.tls)
	s = strings.ReplaceAll(s, "/var/lib/mlflow", r.dir)
	return strings.ReplaceAll(s, "/run/mlflow", r.keys.run)
}

// startPre does what the unit's first two ExecStartPre lines do, in a new
// /run/mlflow (a RuntimeDirectory starts empty): allowed-hosts.sh from the
// fake IMDS, then mlstack_keys.py with what the unit's environment gives it
// by then. It returns the keys script's output.
func (r *serverRig) startPre() string {
	r.t.Helper()
	entries, err := os.ReadDir(r.keys.run)
	must(r.t, err)
	for _, e := range entries {
		must(r.t, os.RemoveAll(filepath.Join(r.keys.run, e.Name())))
	}
	src, err := templates.FS.ReadFile("allowed-hosts.sh")
	must(r.t, err)
	script := filepath.Join(r.dir, "allowed-hosts.sh")
	must(r.t, os.WriteFile(script, src, 0o755))
	cmd := exec.Command("sh", script, r.relocate("/run/mlflow/allowed-hosts.env"))
	cmd.Env = append(os.Environ(), "MLSTACK_IMDS_ENDPOINT="+r.imdsURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("allowed-hosts.sh: %v\n%s", err, out)
	}
	env := r.environment("")
	r.keys.dns, r.keys.ip = env["MLSTACK_PUBLIC_DNS"], env["MLSTACK_PUBLIC_IP"]
	r.keys.destination = env["_MLFLOW_SERVER_ARTIFACT_DESTINATION"]
	if db := env["MLSTACK_DATABASE"]; db != "" {
		r.keys.env = []string{"MLSTACK_DATABASE=" + db}
	}
	out, err := r.keys.exec()
	if err != nil {
		r.t.Fatalf("mlstack_keys.py: %v\n%s", err, out)
	}
	ini, _ := r.keys.readFile("basic_auth.ini")
	must(r.t, os.WriteFile(filepath.Join(r.keys.run, "basic_auth.ini"), []byte(r.relocate(ini)), 0o600))
	return out
}

// environment is what systemd gives the unit's commands: its Environment=
// lines, then those of dropIn (a unit drop-in's text, or ""), then each
// EnvironmentFile= in order, a later assignment overriding an earlier one;
// a file named with "-" may be missing.
func (r *serverRig) environment(dropIn string) map[string]string {
	r.t.Helper()
	env := map[string]string{}
	for _, unit := range []string{r.unit, dropIn} {
		for k, v := range unitEnv(unit) {
			env[k] = r.relocate(v)
		}
	}
	for line := range strings.Lines(r.unit) {
		f, ok := strings.CutPrefix(strings.TrimSpace(line), "EnvironmentFile=")
		if !ok {
			continue
		}
		f, optional := strings.CutPrefix(f, "-")
		content := r.c.file(r.t, "/etc/mlflow/mlflow.env").Content
		if f != "/etc/mlflow/mlflow.env" {
			b, err := os.ReadFile(r.relocate(f))
			if optional && os.IsNotExist(err) {
				continue
			}
			must(r.t, err)
			content = string(b)
		}
		for k, v := range parseSystemdEnv(content) {
			env[k] = r.relocate(v)
		}
	}
	return env
}

var unitVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// execArgs is an ExecStart= value as systemd runs it (double-quoted words
// kept whole, ${NAME} replaced from env), moved into the rig: loopback and
// r.port for 0.0.0.0 and 5000, the venv for /opt/mlflow.
func (r *serverRig) execArgs(value string, env map[string]string) []string {
	r.t.Helper()
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, c := range strings.ReplaceAll(value, "\\\n", " ") {
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t' || c == '\n') && !quoted:
			if inWord {
				words, inWord = append(words, word.String()), false
				word.Reset()
			}
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	for i, w := range words {
		w = unitVarRE.ReplaceAllStringFunc(w, func(m string) string {
			v, ok := env[m[2:len(m)-1]]
			if !ok {
				r.t.Fatalf("%s is not in the unit's environment", m)
			}
			return v
		})
		switch w {
		case "5000":
			w = r.port
		case "0.0.0.0":
			w = "127.0.0.1"
		case "/usr/local/lib/mlstack":
			w = r.appDir
		}
		words[i] = r.relocate(strings.Replace(w, "/opt/mlflow", r.venv, 1))
	}
	return words
}

// start runs args with env and nothing else in the instance's data dir,
// output to dir/NAME.log, in a process group stopped when the test ends,
// and waits for /health over the published certificate. When the test
// ends the log is scanned for every secret the keys rig knows.
func (r *serverRig) start(name string, args []string, env map[string]string) (*exec.Cmd, <-chan struct{}) {
	r.t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = r.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logPath := filepath.Join(r.dir, name+".log")
	logFile, err := os.Create(logPath)
	must(r.t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Registered before the server starts, so it runs once the server has
	// stopped and flushed its log (cleanups run last-in first-out).
	r.t.Cleanup(func() {
		logFile.Close()
		noSecretsIn(r.t, logPath, r.keys.secretIDs...)
		if r.t.Failed() {
			b, _ := os.ReadFile(logPath)
			r.t.Logf("%s log:\n%s", name, b)
		}
	})
	exited, err := proctest.Start(r.t, cmd, 20*time.Second)
	must(r.t, err)
	client := r.client()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "https://127.0.0.1:"+r.port+"/health", nil)
		req.Host = "localhost"
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, exited
			}
		}
		select {
		case <-exited:
			r.t.Fatalf("%s exited before it answered /health", name)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s did not answer /health within 2 minutes", name)
		}
	}
}

// client is HTTPS trusting the published certificate alone, checked for
// the public name, as mlstack and the MLflow client do.
func (r *serverRig) client() *http.Client {
	r.t.Helper()
	certPEM, _ := r.keys.published("tls-cert")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(certPEM)) {
		r.t.Fatal("the published certificate does not parse")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: r.keys.dns, MinVersion: tls.VersionTLS12}}}
}
