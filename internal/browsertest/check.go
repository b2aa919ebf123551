package browsertest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// UICheck is what a user checks in MLflow's UI after logging a run.
type UICheck struct {
	// URI is the tracking URI (https://HOST:5000) or the URL mlstack ui
	// prints, http://127.0.0.1:PORT/?mlstack-token=…: its query goes with
	// the first page load only (the token buys a cookie) and into no
	// message.
	URI string
	// User and Password answer the server's basic-auth challenge, for URI's
	// origin only; with no User every challenge is refused (mlstack ui adds
	// the header itself, so the browser must never be asked).
	User, Password string
	// The experiment, its run and the run's metric with its value.
	Experiment, Run, Metric string
	Value                   float64
	// OutDir receives the screenshots: mlflow-ui-run.png, or
	// mlflow-ui-failed.png when a step fails.
	OutDir string
	// StepTimeout bounds each step; 0 is DefaultStepTimeout.
	StepTimeout time.Duration

	start string // the first page: URI with its query, at the experiment list
}

// DefaultStepTimeout is long enough for MLflow's UI on a micro instance.
const DefaultStepTimeout = time.Minute

// Screenshot names in UICheck.OutDir.
const (
	ScreenshotOK     = "mlflow-ui-run.png"
	ScreenshotFailed = "mlflow-ui-failed.png"
)

// Result is what a passed check saw.
type Result struct {
	Screenshot string     // the run's page, PNG
	Steps      []StepTime // in order
	// RunsSearch are the answers to the UI's POST …/runs/search ("200").
	RunsSearch []string
	// AuthChallenges counts the server's requests for credentials.
	AuthChallenges int
}

// StepTime is how long one step took.
type StepTime struct {
	Step string
	Took time.Duration
}

// The steps, as errors name them.
const (
	StepExperiments = "experiment list"
	StepRunList     = "run list"
	StepOpenRun     = "open the run"
	StepMetric      = "metric"
	StepScreenshot  = "screenshot"
)

func (c *UICheck) validate() (origin string, err error) {
	u, err := url.Parse(c.URI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		// The URI is not echoed: a malformed one may hold credentials.
		return "", errors.New("UI check: the URI must be http(s)://HOST[:PORT], without credentials")
	}
	if c.Experiment == "" || c.Run == "" || c.Metric == "" || c.OutDir == "" {
		return "", errors.New("UI check: experiment, run, metric and output directory are required")
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	first := *u
	first.Path, first.Fragment = strings.TrimRight(u.Path, "/")+"/", "/experiments"
	c.start = first.String()
	c.URI = u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/")
	return u.Scheme + "://" + u.Host, nil
}

// CheckUI opens the UI at c.URI in a new tab: the experiment list shows the
// experiment, its run list shows the run, the run's page shows the metric
// with its value; then it saves a screenshot. A failure is a *StepError
// that says which step failed and what the page showed.
func (b *Browser) CheckUI(ctx context.Context, c UICheck) (*Result, error) {
	origin, err := c.validate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("UI check: output directory: %w", err)
	}
	tab, closeTab := chromedp.NewContext(b.tab)
	defer closeTab()
	stop := context.AfterFunc(ctx, closeTab)
	defer stop()
	w, err := watchTab(tab, origin, c.User, c.Password)
	if err != nil {
		return nil, fmt.Errorf("UI check: preparing the tab: %w", err)
	}
	r := &checkRun{c: c, tab: tab, w: w}
	res := &Result{}
	for _, s := range []struct {
		name string
		do   func(context.Context) error
	}{
		{StepExperiments, r.experiments}, {StepRunList, r.runList}, {StepOpenRun, r.openRun},
		{StepMetric, r.metric}, {StepScreenshot, r.screenshot},
	} {
		start := time.Now()
		sctx, cancel := context.WithTimeout(tab, c.StepTimeout)
		err := s.do(sctx)
		cancel()
		if err != nil {
			return nil, r.fail(s.name, err)
		}
		res.Steps = append(res.Steps, StepTime{s.name, time.Since(start)})
	}
	res.Screenshot = filepath.Join(c.OutDir, ScreenshotOK)
	res.RunsSearch, res.AuthChallenges = w.runsSearch(), w.challenges()
	return res, nil
}

// Check starts a browser, runs the UI check and stops the browser.
func Check(ctx context.Context, o Options, c UICheck) (*Result, error) {
	b, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	res, err := b.CheckUI(ctx, c)
	if cerr := b.Close(); cerr != nil {
		return res, errors.Join(err, fmt.Errorf("stopping the browser: %w", cerr))
	}
	return res, err
}

// checkRun is one check's state from step to step.
type checkRun struct {
	c       UICheck
	tab     context.Context
	w       *watch
	expID   string
	runHref string
}

// experiments opens the experiment list and finds the experiment's link.
func (r *checkRun) experiments(ctx context.Context) error {
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(r.c.start))
	if err != nil {
		return fmt.Errorf("loading %s: %w", r.c.URI, err)
	}
	if resp != nil && resp.Status != 200 {
		return fmt.Errorf("the page itself answered %d %s", resp.Status, resp.StatusText)
	}
	href, err := waitFor(ctx, jsLink("#/experiments/", r.c.Experiment), nil)
	if err != nil {
		return fmt.Errorf("no link to experiment %q: %w", r.c.Experiment, err)
	}
	r.expID = strings.TrimPrefix(href, "#/experiments/")
	if r.expID == "" || strings.ContainsAny(r.expID, "/?") {
		return fmt.Errorf("experiment %q links to %q, not to an experiment", r.c.Experiment, href)
	}
	return nil
}

// errorSettle is how long a failed runs/search is given before the step
// gives up: the UI renders its error message in that time.
const errorSettle = 3 * time.Second

// runList opens the experiment's run list (MLflow 3.17 opens an experiment
// on its GenAI overview, so the list is reached by its own address) and
// finds the run's link there. A failed runs/search ends it at once: the
// UI shows an error and will not ask again.
func (r *checkRun) runList(ctx context.Context) error {
	if err := chromedp.Do(ctx, chromedp.Navigate(r.c.URI+"/#/experiments/"+r.expID+"/runs")); err != nil {
		return fmt.Errorf("opening the run list: %w", err)
	}
	prefix := "#/experiments/" + r.expID + "/runs/"
	href, err := waitFor(ctx, jsMarkLink(prefix, r.c.Run), r.w.runsSearchFailedFor(errorSettle))
	if err != nil {
		return fmt.Errorf("no link to run %q: %w", r.c.Run, err)
	}
	if strings.ContainsAny(strings.TrimPrefix(href, prefix), "/?") {
		return fmt.Errorf("run %q links to %q, not to a run", r.c.Run, href)
	}
	r.runHref = href
	return nil
}

// openRun clicks the run's link, as a user does, and waits for its page.
func (r *checkRun) openRun(ctx context.Context) error {
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[`+markAttr+`]`))); err != nil {
		return fmt.Errorf("clicking run %q: %w", r.c.Run, err)
	}
	if _, err := waitFor(ctx, jsHashIs(r.runHref), nil); err != nil {
		return fmt.Errorf("the click did not open %s: %w", r.runHref, err)
	}
	return nil
}

// metric finds the metric's row in the run's metrics table.
func (r *checkRun) metric(ctx context.Context) error {
	shown, err := waitFor(ctx, jsMetric(r.c.Metric), nil)
	if err != nil {
		return fmt.Errorf("no metric %q on the run's page: %w", r.c.Metric, err)
	}
	v, err := strconv.ParseFloat(shown, 64)
	if err != nil || !near(v, r.c.Value) {
		return fmt.Errorf("metric %q shows %q, want %v", r.c.Metric, shown, r.c.Value)
	}
	return nil
}

func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func (r *checkRun) screenshot(ctx context.Context) error {
	return saveScreenshot(ctx, filepath.Join(r.c.OutDir, ScreenshotOK))
}

func saveScreenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		return fmt.Errorf("taking the screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("saving the screenshot: %w", err)
	}
	return nil
}
