package browsertest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// runsSearchPath is the request behind the UI's run list, a POST that
// MLflow's security middleware refuses for an origin it does not list.
const runsSearchPath = "/ajax-api/2.0/mlflow/runs/search"

// watch follows one tab's network: it answers basic-auth challenges of the
// checked origin, and records the answers to runs/search.
type watch struct {
	origin, user, password string

	mu       sync.Mutex
	answered map[fetch.RequestID]bool
	asked    int
	pending  map[network.RequestID]bool // runs/search requests sent
	answers  []string                   // their statuses or errors, in order
}

// watchTab starts watching tab. Every request to origin pauses in the
// Fetch domain (that is what lets a challenge reach us) and is let go at
// once; credentials go to origin's server alone, once per request.
func watchTab(tab context.Context, origin, user, password string) (*watch, error) {
	w := &watch{origin: origin, user: user, password: password,
		answered: map[fetch.RequestID]bool{}, pending: map[network.RequestID]bool{}}
	// The first run attaches the tab; later runs may have deadlines.
	if err := chromedp.Do(tab); err != nil {
		return nil, err
	}
	if err := chromedp.Listen(tab, w.onNetwork); err != nil {
		return nil, err
	}
	paused := chromedp.Events(tab, fetch.RequestPaused)
	challenges := chromedp.Events(tab, fetch.AuthRequired)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	go func() {
		for ev, err := range challenges {
			if err != nil {
				return
			}
			resp := w.answer(ev)
			_, _ = chromedp.Call(tab, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: &resp})
		}
	}()
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		return nil, fmt.Errorf("network domain: %w", err)
	}
	handle := true
	_, err := chromedp.Call(tab, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: origin + "/*"}}, HandleAuthRequests: &handle})
	if err != nil {
		return nil, fmt.Errorf("fetch domain: %w", err)
	}
	return w, nil
}

// answer decides a challenge: the credentials for the checked origin's
// server, the first time for a request; a refusal otherwise (a second
// challenge means they were wrong, and asking again would loop).
func (w *watch) answer(ev fetch.EventAuthRequired) fetch.AuthChallengeResponse {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked++
	ch := ev.AuthChallenge
	if w.user == "" || ch == nil || ch.Source == fetch.AuthChallengeSourceProxy ||
		strings.TrimRight(ch.Origin, "/") != w.origin || w.answered[ev.RequestID] {
		return fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
	}
	w.answered[ev.RequestID] = true
	return fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials,
		Username: w.user, Password: w.password}
}

// onNetwork records runs/search requests and their answers. It runs in the
// tab's event loop, in order: it must be quick and send no command.
func (w *watch) onNetwork(ev any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request != nil && ev.Request.Method == "POST" && strings.HasPrefix(ev.Request.URL, w.origin+runsSearchPath) {
			w.pending[ev.RequestID] = true
		}
	case *network.EventResponseReceived:
		if w.pending[ev.RequestID] && ev.Response != nil {
			delete(w.pending, ev.RequestID)
			w.answers = append(w.answers, strconv.FormatInt(ev.Response.Status, 10))
		}
	case *network.EventLoadingFailed:
		if w.pending[ev.RequestID] {
			delete(w.pending, ev.RequestID)
			w.answers = append(w.answers, "failed: "+ev.ErrorText)
		}
	}
}

func (w *watch) runsSearch() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.answers...)
}

func (w *watch) challenges() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked
}

// runsSearchFailedFor is a stop condition for waitFor: why the run list
// cannot appear, once runs/search has been failing for settle.
func (w *watch) runsSearchFailedFor(settle time.Duration) func() error {
	var since time.Time
	return func() error {
		err := w.runsSearchFailed()
		switch {
		case err == nil:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= settle:
			return err
		}
		return nil
	}
}

// runsSearchFailed is why the run list cannot appear: every runs/search so
// far was refused or failed (the UI does not retry it).
func (w *watch) runsSearchFailed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.answers) == 0 || len(w.pending) > 0 {
		return nil
	}
	for _, a := range w.answers {
		if strings.HasPrefix(a, "2") {
			return nil
		}
	}
	return fmt.Errorf("POST %s answered %s", runsSearchPath, strings.Join(w.answers, ", "))
}
