package mlflowtest

// The helpers around the real server, against httptest servers that
// serve the certificate SelfSigned makes and the REST calls Seed sends
// (MLflow's endpoints and answers). Start itself runs the MLflow venv and
// is proved by the browser and CLI tests that use it.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision/server"
)

func TestSelfSigned(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, err := SelfSigned(DefaultHost, net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("the key does not match the certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := server.Covers(cert, DefaultHost, now); err != nil {
		t.Errorf("not valid for %s now: %v", DefaultHost, err)
	}
	if err := server.Covers(cert, "127.0.0.1", now); err != nil {
		t.Errorf("not valid for 127.0.0.1: %v", err)
	}
	if server.Covers(cert, "ec2-1-1-1-1.example", now) == nil || server.Covers(cert, DefaultHost, now.Add(25*time.Hour)) == nil {
		t.Error("valid for another name, or for longer than a day")
	}
	again, _, err := SelfSigned(DefaultHost)
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := server.ParseCert(again); c2 == nil || c2.SerialNumber.Cmp(cert.SerialNumber) == 0 || server.SPKIHash(c2) == server.SPKIHash(cert) {
		t.Error("two certificates share a serial or a key")
	}
}

// fakeREST answers what Seed sends as MLflow does, behind basic auth.
type fakeREST struct {
	mu       sync.Mutex
	health   int // /health's status; 0: 200
	noExpID  bool
	calls    []string
	finished bool
	metric   map[string]any
}

func (f *fakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/health" {
		if f.health != 0 {
			w.WriteHeader(f.health)
		}
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pw-123" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("You are not authenticated."))
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error_code":"MALFORMED_REQUEST","message":"bad body"}`))
		return
	}
	ep := strings.TrimPrefix(r.URL.Path, "/api/2.0/mlflow/")
	f.calls = append(f.calls, ep)
	switch ep {
	case "experiments/create":
		if f.noExpID {
			_, _ = w.Write([]byte(`{}`))
			return
		}
		_, _ = w.Write([]byte(`{"experiment_id":"3"}`))
	case "runs/create":
		_, _ = w.Write([]byte(`{"run":{"info":{"run_id":"r9","experiment_id":"3","status":"RUNNING"}}}`))
	case "runs/log-metric":
		f.metric = body
		_, _ = w.Write([]byte(`{}`))
	case "runs/update":
		f.finished = body["status"] == "FINISHED" && body["run_id"] == "r9"
		_, _ = w.Write([]byte(`{"run_info":{"run_id":"r9","status":"FINISHED"}}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error_code":"ENDPOINT_NOT_FOUND","message":"no"}`))
	}
}

// tlsServer serves h over TLS with a SelfSigned certificate for
// DefaultHost, and is a Server as Start would describe it.
func tlsServer(t *testing.T, h http.Handler) *Server {
	t.Helper()
	certPEM, keyPEM, err := SelfSigned(DefaultHost, net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	return &Server{Host: DefaultHost, Addr: ts.Listener.Addr().String(), URI: "https://" + net.JoinHostPort(DefaultHost, port),
		CertPEM: certPEM, User: "admin", Password: "pw-123"}
}

// TestClientReachesTheMadeUpName: the client dials Addr for the made-up
// name and checks TLS against that name and the pinned certificate.
func TestClientReachesTheMadeUpName(t *testing.T) {
	t.Parallel()
	s := tlsServer(t, &fakeREST{})
	resp, err := s.Client(t).Get(s.URI + "/health")
	if err != nil {
		t.Fatalf("GET %s/health: %v", s.URI, err)
	}
	resp.Body.Close()
	other, _, err := SelfSigned(DefaultHost)
	if err != nil {
		t.Fatal(err)
	}
	s2 := *s
	s2.CertPEM = other
	if resp, err := s2.Client(t).Get(s.URI + "/health"); err == nil {
		resp.Body.Close()
		t.Error("a client pinned to another certificate got through")
	}
	if got := testenv.StopsAt(func(tb testing.TB) { (&Server{CertPEM: []byte("nonsense")}).Client(tb) }); !strings.Contains(got, "pinned server certificate") {
		t.Errorf("Client with a bad certificate failed with %q", got)
	}
}

func TestWaitHealthy(t *testing.T) {
	t.Parallel()
	s := tlsServer(t, &fakeREST{})
	running := make(chan struct{})
	if got := testenv.StopsAt(func(tb testing.TB) { s.waitHealthy(tb, running) }); got != "" {
		t.Errorf("waitHealthy on a healthy server failed: %s", got)
	}
	sick := tlsServer(t, &fakeREST{health: http.StatusServiceUnavailable})
	exited := make(chan struct{})
	close(exited)
	if got := testenv.StopsAt(func(tb testing.TB) { sick.waitHealthy(tb, exited) }); !strings.Contains(got, "exited before it answered /health") {
		t.Errorf("waitHealthy on an exited server failed with %q", got)
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	f := &fakeREST{}
	s := tlsServer(t, f)
	got := s.Seed(t, Seed{Experiment: "e", Run: "r", Metric: "accuracy", Value: 0.875})
	if got != (Seeded{ExperimentID: "3", RunID: "r9"}) {
		t.Errorf("Seed = %+v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := "experiments/create runs/create runs/log-metric runs/update"; strings.Join(f.calls, " ") != want {
		t.Errorf("calls %v, want %s", f.calls, want)
	}
	if f.metric["key"] != "accuracy" || f.metric["value"] != 0.875 || f.metric["run_id"] != "r9" || !f.finished {
		t.Errorf("metric %v, run finished %v", f.metric, f.finished)
	}
}

func TestSeedFails(t *testing.T) {
	t.Parallel()
	s := tlsServer(t, &fakeREST{noExpID: true})
	if got := testenv.StopsAt(func(tb testing.TB) { s.Seed(tb, Seed{Experiment: "e", Run: "r", Metric: "m"}) }); !strings.Contains(got, `seeding MLflow: experiment id ""`) {
		t.Errorf("Seed without an experiment id failed with %q", got)
	}
	bad := *s
	bad.Password = "wrong"
	if got := testenv.StopsAt(func(tb testing.TB) { bad.Seed(tb, Seed{Experiment: "e"}) }); !strings.Contains(got, "POST experiments/create: 401 Unauthorized") {
		t.Errorf("Seed with a wrong password failed with %q", got)
	}
	garbled := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	garbled.Password = "pw-123"
	if got := testenv.StopsAt(func(tb testing.TB) { garbled.Seed(tb, Seed{Experiment: "e"}) }); !strings.Contains(got, "decoding <html>") {
		t.Errorf("Seed on a non-JSON answer failed with %q", got)
	}
}

// TestRequireVenv: the venv must hold the MLflow version the instance
// installs.
func TestRequireVenv(t *testing.T) {
	venv := t.TempDir()
	if err := os.Mkdir(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := func(version string) {
		script := "#!/bin/sh\necho \"mlflow, version " + version + "\"\n"
		if err := os.WriteFile(filepath.Join(venv, "bin", "mlflow"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MLSTACK_TEST_MLFLOW_VENV", venv)
	fake(cloudinit.DefaultMLflowVersion)
	var got string
	if msg := testenv.StopsAt(func(tb testing.TB) { got = requireVenv(tb) }); msg != "" || got != venv {
		t.Errorf("requireVenv with the pinned version = %q (%s)", got, msg)
	}
	fake("0.0.1")
	if msg := testenv.StopsAt(func(tb testing.TB) { requireVenv(tb) }); !strings.Contains(msg, "does not hold MLflow "+cloudinit.DefaultMLflowVersion) {
		t.Errorf("requireVenv with another version failed with %q", msg)
	}
}

// TestWriteFiles: the certificate names the server's host, its key
// matches, and basic_auth.ini makes the server's admin with its password.
func TestWriteFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &Server{Host: "ec2-198-51-100-1.example", User: "admin", Password: "ui-" + randomHex(t, 16)}
	keyFile := s.writeFiles(t, dir)
	pair, err := tls.LoadX509KeyPair(s.CertFile, keyFile)
	if err != nil {
		t.Fatalf("certificate and key: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Covers(cert, s.Host, time.Now()); err != nil {
		t.Errorf("the certificate does not cover %s: %v", s.Host, err)
	}
	if pinned, err := os.ReadFile(s.CertFile); err != nil || string(pinned) != string(s.CertPEM) {
		t.Error("CertPEM is not the certificate written")
	}
	ini, err := os.ReadFile(filepath.Join(dir, "basic_auth.ini"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[mlflow]\n", "admin_username = admin\n", "admin_password = " + s.Password + "\n",
		"database_uri = sqlite:///" + filepath.Join(dir, "basic_auth.db") + "\n", "default_permission = READ\n"} {
		if !strings.Contains(string(ini), want) {
			t.Errorf("basic_auth.ini lacks %q:\n%s", want, ini)
		}
	}
	for _, f := range []string{s.CertFile, keyFile, filepath.Join(dir, "basic_auth.ini")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
}

func TestRandomHex(t *testing.T) {
	t.Parallel()
	a, b := randomHex(t, 16), randomHex(t, 16)
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("randomHex = %q, %q; want two different 32-digit hex strings", a, b)
	}
}
