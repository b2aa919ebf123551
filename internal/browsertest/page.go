package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// StepError is a failed step, with what the page showed at that moment.
type StepError struct {
	Step       string
	Err        error
	Title, URL string
	// PageErrors are the error messages visible on the page.
	PageErrors []string
	// RunsSearch are the answers to the UI's POST …/runs/search.
	RunsSearch     []string
	AuthChallenges int
	Screenshot     string // of the failed page; "" when none was taken
	secret         string // redacted from the message, whatever put it there
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "UI check failed at step %q: %v\n  page: title %q, at %s", e.Step, e.Err, e.Title, e.URL)
	if len(e.PageErrors) == 0 {
		b.WriteString("\n  no error message visible on the page")
	} else {
		fmt.Fprintf(&b, "\n  visible error: %s", strings.Join(quoteAll(e.PageErrors), "; "))
	}
	if len(e.RunsSearch) == 0 {
		b.WriteString("\n  the UI sent no runs/search request")
	} else {
		fmt.Fprintf(&b, "\n  POST /ajax-api/2.0/mlflow/runs/search answered: %s", strings.Join(e.RunsSearch, ", "))
	}
	if e.AuthChallenges > 0 {
		fmt.Fprintf(&b, "\n  the server asked for credentials %d time(s)", e.AuthChallenges)
	}
	if e.Screenshot != "" {
		fmt.Fprintf(&b, "\n  screenshot: %s", e.Screenshot)
	}
	return redact(b.String(), e.secret)
}

func (e *StepError) Unwrap() error { return e.Err }

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// redact hides secret in s: no page or browser message may show it.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// fail gathers what the page shows for a StepError, and saves a
// screenshot of it, within a few seconds of its own (the step's deadline
// may be what failed).
func (r *checkRun) fail(step string, err error) error {
	e := &StepError{Step: step, Err: err, secret: r.c.Password,
		RunsSearch: r.w.runsSearch(), AuthChallenges: r.w.challenges()}
	ctx, cancel := context.WithTimeout(r.tab, 10*time.Second)
	defer cancel()
	if st, serr := chromedp.Run(ctx, chromedp.Evaluate[pageState](jsPageState)); serr == nil {
		e.Title, e.URL, e.PageErrors = st.Title, st.URL, st.Errors
	} else {
		e.Title = fmt.Sprintf("(unreadable: %v)", serr)
	}
	path := filepath.Join(r.c.OutDir, ScreenshotFailed)
	if saveScreenshot(ctx, path) == nil {
		e.Screenshot = path
	}
	return e
}

type pageState struct {
	Title  string   `json:"title"`
	URL    string   `json:"url"`
	Errors []string `json:"errors"`
}

// jsPageState reads the title, the address and the visible error messages:
// alerts and headings that say error (MLflow shows "Request error" over the
// error code), with the text around a heading.
const jsPageState = `(() => {
  const errs = new Set();
  for (const el of document.querySelectorAll('[role=alert], h1, h2, h3, h4, h5')) {
    let t = (el.innerText || '').trim();
    if (!/error|denied|forbidden|unauthori[sz]ed|blocked|failed|not found/i.test(t)) continue;
    if (/^H[1-5]$/.test(el.tagName) && el.parentElement) t = el.parentElement.innerText.trim();
    errs.add(t.replace(/\s+/g, ' ').slice(0, 200));
  }
  return {title: document.title, url: location.href, errors: Array.from(errs).slice(0, 5)};
})()`

// markAttr marks the link the next click goes to.
const markAttr = "data-mlstack-check"

func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// jsLink is the href of the first link under prefix whose text is name.
func jsLink(prefix, name string) string {
	return `(() => {
  const p = ` + jsString(prefix) + `, n = ` + jsString(name) + `;
  const a = Array.from(document.querySelectorAll('a')).find(a => (a.getAttribute('href') || '').startsWith(p) && a.innerText.trim() === n);
  return a ? a.getAttribute('href') : '';
})()`
}

// jsMarkLink is jsLink that also marks the link for a click.
func jsMarkLink(prefix, name string) string {
	return `(() => {
  const p = ` + jsString(prefix) + `, n = ` + jsString(name) + `;
  document.querySelectorAll('[` + markAttr + `]').forEach(e => e.removeAttribute('` + markAttr + `'));
  const a = Array.from(document.querySelectorAll('a')).find(a => (a.getAttribute('href') || '').startsWith(p) && a.innerText.trim() === n);
  if (!a) return '';
  a.setAttribute('` + markAttr + `', '');
  return a.getAttribute('href');
})()`
}

func jsHashIs(prefix string) string {
	return `location.hash.startsWith(` + jsString(prefix) + `) ? location.hash : ''`
}

// jsMetric is the value shown next to the metric in the run's metrics table
// (the cell's title holds it unshortened).
func jsMetric(name string) string {
	return `(() => {
  const n = ` + jsString(name) + `;
  for (const row of document.querySelectorAll('[role=row]')) {
    const cells = row.querySelectorAll('[role=cell]');
    if (cells.length < 2 || cells[0].innerText.trim() !== n) continue;
    const v = cells[1].querySelector('[title]');
    return ((v && v.getAttribute('title')) || cells[1].innerText).trim();
  }
  return '';
})()`
}

// waitFor evaluates expr until it gives a non-empty string, ctx ends, or
// stop (when set) gives a reason to give up early.
func waitFor(ctx context.Context, expr string, stop func() error) (string, error) {
	var last error
	start := time.Now()
	for {
		// Errors while the page changes (a destroyed execution context) are
		// expected: try again.
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil && v != "" {
			return v, nil
		}
		if err != nil {
			last = err
		}
		if stop != nil {
			if err := stop(); err != nil {
				return "", err
			}
		}
		select {
		case <-ctx.Done():
			took := time.Since(start).Round(time.Second)
			if last != nil && !errors.Is(last, ctx.Err()) {
				return "", fmt.Errorf("not on the page after %s: %w (last: %v)", took, ctx.Err(), last)
			}
			return "", fmt.Errorf("not on the page after %s: %w", took, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
