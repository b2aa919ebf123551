package browsertest

// The checker's own mechanics in the real chromium, against a fixture
// page instead of MLflow: a hash-routed page with the anchors the steps
// look for in MLflow's UI (experiment links #/experiments/ID, run links
// under #/experiments/ID/runs/ after a POST to runs/search, a metrics
// table of [role=row]/[role=cell] with the value in a title), behind
// basic auth. This proves the steps, their order, the failure reports and
// the screenshots without the MLflow venv; that MLflow's real UI has
// these anchors is what ui_test.go proves with the venv.

import (
	"encoding/json"
	"errors"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fxUser     = "fixture-user"
	fxPassword = "fixture-Pass-0123456789"
)

// fixtureUI is the page and the runs/search endpoint.
type fixtureUI struct {
	searchStatus int // runs/search's answer; 0: 200

	mu      sync.Mutex
	authed  int // requests that came with the right credentials
	refused int // requests refused with a challenge
}

const fixturePage = `<!doctype html><html><head><title>MLflow fixture</title></head><body><div id=app></div><script>
function render() {
  const h = location.hash, app = document.getElementById('app');
  if (h === '' || h === '#/experiments') {
    app.innerHTML = '<h3>Experiments</h3><a href="#/experiments/0">Default</a> <a href="#/experiments/7">fixture-exp</a>';
  } else if (h === '#/experiments/7/runs') {
    app.innerHTML = '<p>loading runs</p>';
    fetch('/ajax-api/2.0/mlflow/runs/search', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"experiment_ids":["7"]}'})
      .then(r => { if (!r.ok) throw new Error('Request error: ' + r.status); return r.json(); })
      .then(j => { app.innerHTML = j.runs.map(x => '<a href="#/experiments/7/runs/' + x.info.run_id + '">' + x.info.run_name + '</a>').join(' '); })
      .catch(e => { app.innerHTML = '<div role=alert>' + e.message + '</div>'; });
  } else if (h.startsWith('#/experiments/7/runs/abc123')) {
    app.innerHTML = '<div role=table><div role=row><div role=cell>loss</div><div role=cell>1.5</div></div>' +
      '<div role=row><div role=cell>accuracy</div><div role=cell><span title="0.875">0.88</span></div></div></div>';
  } else {
    app.innerHTML = '<h3>Page not found</h3>';
  }
}
addEventListener('hashchange', render);
render();
</script></body></html>`

func (f *fixtureUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != fxUser || p != fxPassword {
		f.refused++
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		http.Error(w, "You are not authenticated.", http.StatusUnauthorized)
		return
	}
	f.authed++
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(fixturePage))
	case r.Method == http.MethodPost && r.URL.Path == runsSearchPath:
		if f.searchStatus != 0 {
			w.WriteHeader(f.searchStatus)
			_ = json.NewEncoder(w).Encode(map[string]string{"error_code": "PERMISSION_DENIED", "message": "Permission denied"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"runs": []any{
			map[string]any{"info": map[string]any{"run_id": "abc123", "run_name": "fixture-run", "experiment_id": "7"}},
		}})
	default:
		http.NotFound(w, r)
	}
}

func fixtureCheck(uri, out string) UICheck {
	return UICheck{URI: uri + "/", User: fxUser, Password: fxPassword, Experiment: "fixture-exp", Run: "fixture-run",
		Metric: "accuracy", Value: 0.875, OutDir: out, StepTimeout: 30 * time.Second}
}

// TestCheckOnFixture: Check starts a browser, passes every step in order
// against the fixture, answers the basic-auth challenge, sees runs/search
// answer 200, saves the screenshot and stops the browser.
func TestCheckOnFixture(t *testing.T) {
	needChromium(t)
	fx := &fixtureUI{}
	ts := httptest.NewServer(fx)
	defer ts.Close()
	out := t.TempDir()
	res, err := Check(t.Context(), Options{}, fixtureCheck(ts.URL, out))
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range res.Steps {
		steps = append(steps, s.Step)
	}
	if want := []string{StepExperiments, StepRunList, StepOpenRun, StepMetric, StepScreenshot}; !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if !slices.Equal(res.RunsSearch, []string{"200"}) {
		t.Errorf("runs/search answered %v, want [200]", res.RunsSearch)
	}
	fx.mu.Lock()
	authed, refused := fx.authed, fx.refused
	fx.mu.Unlock()
	if res.AuthChallenges == 0 || refused == 0 || authed < 2 {
		t.Errorf("%d challenge(s) seen, server refused %d and served %d: want the challenge answered", res.AuthChallenges, refused, authed)
	}
	if res.Screenshot != filepath.Join(out, ScreenshotOK) {
		t.Errorf("screenshot at %s", res.Screenshot)
	}
	f, err := os.Open(res.Screenshot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The window is 1400 wide; a blank page would be one colour.
	if bnd := img.Bounds(); bnd.Dx() != 1400 || bnd.Dy() < 100 {
		t.Errorf("screenshot is %v, want the 1400-wide window", bnd)
	}
	colours := map[color.Color]bool{}
	for x := 0; x < 400; x++ {
		for y := 0; y < 100; y++ {
			colours[img.At(x, y)] = true
		}
	}
	if len(colours) < 2 {
		t.Error("the screenshot is blank where the metrics table is")
	}
}

// TestCheckFailsOnFixture: each way the page can differ fails at its step,
// with what the page showed, the failed page's screenshot, and never the
// password.
func TestCheckFailsOnFixture(t *testing.T) {
	needChromium(t)
	fx := &fixtureUI{}
	ts := httptest.NewServer(fx)
	defer ts.Close()
	b, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	if b.PID() <= 0 {
		t.Errorf("PID = %d", b.PID())
	}
	for _, tt := range []struct {
		name, step string
		search     int
		edit       func(*UICheck)
		want       []string // parts of the error's text
		maxTook    time.Duration
	}{
		{"another value", StepMetric, 0, func(c *UICheck) { c.Value = 0.5 },
			[]string{`metric "accuracy" shows "0.875", want 0.5`}, 20 * time.Second},
		{"no such metric", StepMetric, 0, func(c *UICheck) { c.Metric = "f1"; c.StepTimeout = 2 * time.Second },
			[]string{`no metric "f1" on the run's page`, "not on the page after"}, 20 * time.Second},
		{"no such experiment", StepExperiments, 0, func(c *UICheck) { c.Experiment = "other-exp"; c.StepTimeout = 2 * time.Second },
			[]string{`no link to experiment "other-exp"`, "title \"MLflow fixture\""}, 20 * time.Second},
		// runs/search refused: the step ends after errorSettle, long before its timeout.
		{"runs/search refused", StepRunList, 403, func(c *UICheck) { c.StepTimeout = 60 * time.Second },
			[]string{"runs/search answered 403", `visible error: "Request error: 403"`}, 30 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx.mu.Lock()
			fx.searchStatus = tt.search
			fx.mu.Unlock()
			c := fixtureCheck(ts.URL, t.TempDir())
			tt.edit(&c)
			start := time.Now()
			_, err := b.CheckUI(t.Context(), c)
			took := time.Since(start)
			var se *StepError
			if !errors.As(err, &se) || se.Step != tt.step {
				t.Fatalf("want step %q to fail, got %v", tt.step, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), fxPassword) {
				t.Errorf("the error holds the password:\n%s", err)
			}
			if se.Screenshot != filepath.Join(c.OutDir, ScreenshotFailed) {
				t.Errorf("failed page's screenshot at %q", se.Screenshot)
			} else if _, err := os.Stat(se.Screenshot); err != nil {
				t.Error(err)
			}
			if errors.Unwrap(err) != se.Err {
				t.Error("StepError does not unwrap to its cause")
			}
			if took > tt.maxTook {
				t.Errorf("the step took %s to fail, want under %s", took, tt.maxTook)
			}
		})
	}
}

// TestStartReportsBrowserOutput: a browser that cannot start is an error
// with the end of what it printed, and leaves no profile behind.
func TestStartReportsBrowserOutput(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Start makes the profile
	script := filepath.Join(t.TempDir(), "fake-chromium")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'fake chromium: cannot open display' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Start(t.Context(), Options{Exec: script})
	if err == nil {
		b.Close()
		t.Fatal("a browser that exits at once started")
	}
	if !strings.Contains(err.Error(), "starting "+script) || !strings.Contains(err.Error(), "chromium said:\nfake chromium: cannot open display") {
		t.Errorf("Start = %v, want what the browser printed", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "mlstack-chromium-*")); len(left) > 0 {
		t.Errorf("profile %v left behind", left)
	}
	if _, err := Start(t.Context(), Options{Exec: "/nonexistent/chromium"}); err == nil || !strings.Contains(err.Error(), "no browser") {
		t.Errorf("Start of a missing browser = %v", err)
	}
}

func TestNear(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b float64
		want bool
	}{
		{0.875, 0.875, true},
		{0.1 + 0.2, 0.3, true},
		{0.5, 0.875, false},
		{1e-12, 0, false},
		{0, 0, true},
	} {
		if got := near(tt.a, tt.b); got != tt.want {
			t.Errorf("near(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
