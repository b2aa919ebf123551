package browsertest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/mlflowtest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision/server"
)

var seed = mlflowtest.Seed{Experiment: "browser-exp", Run: "browser-run", Metric: "accuracy", Value: 0.875}

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(Chromium); err != nil {
		testenv.Missing(t, "no chromium (Debian's chromium package; .ci/run installs it)")
	}
}

// pinOf is what a client pins for srv: its certificate's SPKI hash.
func pinOf(t *testing.T, certPEM []byte) string {
	t.Helper()
	cert, err := server.ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return server.SPKIHash(cert)
}

func optionsFor(srv *mlflowtest.Server, pins ...string) Options {
	return Options{PinSPKI: pins, Resolve: map[string]string{srv.Host: "127.0.0.1"}}
}

func checkFor(srv *mlflowtest.Server, out string) UICheck {
	return UICheck{URI: srv.URI, User: srv.User, Password: srv.Password, Experiment: seed.Experiment,
		Run: seed.Run, Metric: seed.Metric, Value: seed.Value, OutDir: out, StepTimeout: 45 * time.Second}
}

// TestUIWithCORSOrigin is the UI as the issue wants it: MLflow behind TLS
// with --allowed-hosts and the public origin in
// MLFLOW_SERVER_CORS_ALLOWED_ORIGINS; a real chromium at the public name
// (mapped to 127.0.0.1), trusting the pinned certificate alone, logs in
// and sees the experiment, the run and its metric. Then the same browser
// proves the check can fail: a wrong value, a run that is not there.
func TestUIWithCORSOrigin(t *testing.T) {
	needChromium(t)
	srv := mlflowtest.Start(t, mlflowtest.Options{CORS: true})
	srv.Seed(t, seed)
	out := testenv.ArtifactDir(t)
	b, err := Start(t.Context(), optionsFor(srv, pinOf(t, srv.CertPEM)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()

	start := time.Now()
	res, err := b.CheckUI(t.Context(), checkFor(srv, out))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("UI check passed in %s: steps %v, runs/search %v, %d auth challenge(s); screenshot %s",
		time.Since(start).Round(100*time.Millisecond), res.Steps, res.RunsSearch, res.AuthChallenges, res.Screenshot)
	if !slices.Contains(res.RunsSearch, "200") {
		t.Errorf("runs/search answered %v, want a 200", res.RunsSearch)
	}
	if res.AuthChallenges == 0 {
		t.Errorf("the server never asked for credentials: is basic auth on?")
	}
	assertPNG(t, res.Screenshot)

	// A wrong value fails as soon as the metric shows; a missing run only
	// when the step's time is up, which must still let the steps before it
	// pass on a loaded machine.
	for _, tt := range []struct {
		name, step string
		timeout    time.Duration
		edit       func(*UICheck)
	}{
		{"another value", StepMetric, 45 * time.Second, func(c *UICheck) { c.Value = 0.5 }},
		{"another run", StepRunList, 15 * time.Second, func(c *UICheck) { c.Run = "not-" + seed.Run }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := checkFor(srv, t.TempDir())
			c.StepTimeout = tt.timeout
			tt.edit(&c)
			_, err := b.CheckUI(t.Context(), c)
			var se *StepError
			if !errors.As(err, &se) || se.Step != tt.step {
				t.Fatalf("want step %q to fail, got %v", tt.step, err)
			}
		})
	}
}

// TestUIWithoutCORSOrigin is today's server: --allowed-hosts alone. The
// experiment list loads (GET), but the run list is a POST from a
// non-localhost origin, which MLflow refuses: the check fails at the run
// list with runs/search answering 403 and the page showing an error.
func TestUIWithoutCORSOrigin(t *testing.T) {
	needChromium(t)
	srv := mlflowtest.Start(t, mlflowtest.Options{CORS: false})
	srv.Seed(t, seed)
	out := testenv.ArtifactDir(t)

	_, err := Check(t.Context(), optionsFor(srv, pinOf(t, srv.CertPEM)), checkFor(srv, out))
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("want a failed step, got %v", err)
	}
	t.Logf("as expected without the CORS origin:\n%v", err)
	if se.Step != StepRunList || !slices.Contains(se.RunsSearch, "403") {
		t.Errorf("want the run list to fail with runs/search 403, got step %q, runs/search %v", se.Step, se.RunsSearch)
	}
	if !slices.ContainsFunc(se.PageErrors, func(s string) bool { return strings.Contains(s, "Request error") }) {
		t.Errorf("want the page to show MLflow's request error, it shows %q", se.PageErrors)
	}
	if strings.Contains(err.Error(), srv.Password) {
		t.Errorf("the error holds the password")
	}
	assertPNG(t, se.Screenshot)
}

// TestUIPinnedCertificate: the pin trusts that one key, it does not turn
// certificate checks off: a browser pinned to another key, or to none,
// cannot load the page.
func TestUIPinnedCertificate(t *testing.T) {
	needChromium(t)
	srv := mlflowtest.Start(t, mlflowtest.Options{CORS: true})
	otherCert, _, err := mlflowtest.SelfSigned(srv.Host, net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		pins []string
	}{
		{"another key", []string{pinOf(t, otherCert)}},
		{"no pin", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := checkFor(srv, t.TempDir())
			c.StepTimeout = 20 * time.Second
			_, err := Check(t.Context(), optionsFor(srv, tt.pins...), c)
			var se *StepError
			if !errors.As(err, &se) || se.Step != StepExperiments || !strings.Contains(err.Error(), "ERR_CERT") {
				t.Fatalf("want the page load to fail on the certificate, got %v", err)
			}
			if testing.Verbose() {
				t.Logf("as expected: %v", err)
			}
			if se.AuthChallenges != 0 {
				t.Errorf("the browser reached the server's login (%d challenges) without trusting it", se.AuthChallenges)
			}
		})
	}
}

// TestCloseStopsEveryProcess: after Close no process of the browser is
// alive — its group, and what left the group but names its private dir
// (as chromium's crash handlers do) — and the private dir is gone. Two
// decoys stand for children that outlive the browser: one in its group,
// one in a group of its own running from the private dir.
func TestCloseStopsEveryProcess(t *testing.T) {
	needChromium(t)
	b, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A page makes a renderer; the browser already runs its zygotes and
	// utility processes.
	if _, err := b.CheckUI(t.Context(), UICheck{URI: "http://127.0.0.1:9", Experiment: "e", Run: "r", Metric: "m",
		OutDir: t.TempDir(), StepTimeout: 5 * time.Second}); err == nil {
		t.Error("a check against a closed port passed")
	}
	if n := len(b.alive()); n < 2 {
		t.Fatalf("want the browser and its children alive before Close, found %d processes", n)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	inDir := filepath.Join(b.dir, "decoy")
	if err := os.Symlink(sleep, inDir); err != nil {
		t.Fatal(err)
	}
	decoys := map[string]<-chan struct{}{
		"in the browser's group":          startDecoy(t, exec.Command(sleep, "60"), b.pid),
		"from the private dir, own group": startDecoy(t, exec.Command(inDir, "60"), 0),
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if left := b.alive(); len(left) > 0 {
		t.Errorf("processes of the browser alive after Close: %v", left)
	}
	for name, exited := range decoys {
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("the decoy %s outlived Close", name)
		}
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("the browser's private dir %s is still there (%v)", b.dir, err)
	}
}

// startDecoy starts cmd in process group pgid (0: a new one) and returns a
// channel closed when it has exited; the test kills it if Close did not.
func startDecoy(t *testing.T, cmd *exec.Cmd, pgid int) <-chan struct{} {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return exited
}

func assertPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") || len(b) < 10_000 {
		t.Errorf("%s is not a PNG of a page (%d bytes)", filepath.Base(path), len(b))
	}
}
