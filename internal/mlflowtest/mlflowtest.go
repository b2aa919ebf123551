// Package mlflowtest runs the real, pinned MLflow server on loopback for
// tests, set up as an instance runs it: basic auth, HTTPS from uvicorn with
// a self-signed certificate for a made-up public DNS name, --allowed-hosts
// for that name, and (optionally) the CORS origin a browser at that name
// sends. The venv comes from MLSTACK_TEST_MLFLOW_VENV
// (scripts/mlflow-venv.sh makes one); without it the test fails in CI and
// is skipped and counted elsewhere (testenv).
package mlflowtest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision/server"
)

// DefaultHost is a made-up EC2 public DNS name (203.0.113.0/24 is
// TEST-NET-3): tests map it to 127.0.0.1 themselves, no /etc/hosts needed.
const DefaultHost = "ec2-203-0-113-10.eu-west-3.compute.amazonaws.com"

// Options choose how the server is set up.
type Options struct {
	Host string // the public DNS name it answers to; "" is DefaultHost
	// CORS lists https://Host:port in MLFLOW_SERVER_CORS_ALLOWED_ORIGINS, so
	// that a browser's POSTs from that origin are let through.
	CORS bool
}

// Server is one running MLflow server.
type Server struct {
	Host     string // the made-up public DNS name
	Port     int
	Addr     string // 127.0.0.1:Port, where it listens
	URI      string // https://Host:Port, the tracking URI a client uses
	CertPEM  []byte // the certificate it serves, to pin
	CertFile string
	User     string
	Password string               // random per server: the secret tests scan outputs for
	Log      *sshdtest.SyncBuffer // its output, for the test and the secret scan
}

// Start runs the server and waits until it answers /health over the pinned
// TLS; the whole process group is stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	venv := requireVenv(t)
	if o.Host == "" {
		o.Host = DefaultHost
	}
	dir := t.TempDir()
	s := &Server{Host: o.Host, User: "admin", Password: "ui-" + randomHex(t, 16), Log: &sshdtest.SyncBuffer{}}
	s.Port = testenv.FreePort(t)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	s.URI = "https://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	keyFile := s.writeFiles(t, dir)

	cmd := exec.Command(filepath.Join(venv, "bin", "mlflow"), "server",
		"--app-name", "basic-auth", "--host", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--workers", "1",
		"--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"),
		"--default-artifact-root", filepath.Join(dir, "artifacts"),
		"--allowed-hosts", s.Host+":"+strconv.Itoa(s.Port)+","+s.Host,
		"--uvicorn-opts", "--ssl-keyfile "+keyFile+" --ssl-certfile "+s.CertFile)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir,
		"MLFLOW_AUTH_CONFIG_PATH=" + filepath.Join(dir, "basic_auth.ini"),
		"MLFLOW_FLASK_SERVER_SECRET_KEY=" + randomHex(t, 16),
		"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false"}
	if o.CORS {
		cmd.Env = append(cmd.Env, "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS="+s.URI)
	}
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	t.Cleanup(func() {
		if strings.Contains(s.Log.String(), s.Password) {
			t.Errorf("the MLflow server's log holds the admin password")
		}
		if t.Failed() {
			t.Logf("MLflow server log:\n%s", s.Log.String())
		}
	})
	// mlflow forks uvicorn: stop the whole group.
	exited, err := proctest.Start(t, cmd, 20*time.Second)
	if err != nil {
		t.Fatalf("starting mlflow server: %v", err)
	}
	s.waitHealthy(t, exited)
	return s
}

func requireVenv(t testing.TB) string {
	t.Helper()
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; scripts/mlflow-venv.sh makes one)")
	}
	out, err := exec.Command(filepath.Join(venv, "bin", "mlflow"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), cloudinit.DefaultMLflowVersion) {
		t.Fatalf("%s does not hold MLflow %s: %v %s", venv, cloudinit.DefaultMLflowVersion, err, out)
	}
	return venv
}

// writeFiles writes the certificate, its key and basic_auth.ini into dir
// and returns the key's path.
func (s *Server) writeFiles(t testing.TB, dir string) string {
	t.Helper()
	certPEM, keyPEM, err := SelfSigned(s.Host, net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.CertPEM, s.CertFile = certPEM, filepath.Join(dir, "server.crt")
	keyFile := filepath.Join(dir, "server.key")
	ini := fmt.Sprintf("[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s\n"+
		"admin_username = %s\nadmin_password = %s\n"+
		"authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
		filepath.Join(dir, "basic_auth.db"), s.User, s.Password)
	for path, data := range map[string][]byte{s.CertFile: certPEM, keyFile: keyPEM, filepath.Join(dir, "basic_auth.ini"): []byte(ini)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keyFile
}

// Client is an HTTP client that trusts the server's certificate alone and
// reaches its made-up name at 127.0.0.1, so TLS checks the real name.
func (s *Server) Client(t testing.TB) *http.Client {
	t.Helper()
	cfg, err := server.PinnedTLS(s.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: s.Transport(cfg)}
}

// Transport dials Addr whatever host a request names, over cfg.
func (s *Server) Transport(cfg *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr)
		},
	}
}

func (s *Server) waitHealthy(t testing.TB, exited <-chan struct{}) {
	t.Helper()
	c := s.Client(t)
	c.Timeout = 5 * time.Second
	start := time.Now()
	for deadline := start.Add(2 * time.Minute); ; {
		resp, err := c.Get(s.URI + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("MLflow server at %s (%s) healthy after %s", s.URI, s.Addr, time.Since(start).Round(100*time.Millisecond))
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("the MLflow server exited before it answered /health (last: %v)", err)
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the MLflow server did not answer /health within 2 minutes (last: %v)", err)
		}
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
