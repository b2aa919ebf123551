package browsertest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
)

func TestResolverRules(t *testing.T) {
	for _, tt := range []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"ec2-1.example": "127.0.0.1"}, "MAP ec2-1.example 127.0.0.1"},
		{map[string]string{"b.example": "10.0.0.2", "a.example": "10.0.0.1"}, "MAP a.example 10.0.0.1, MAP b.example 10.0.0.2"},
	} {
		if got := resolverRules(tt.in); got != tt.want {
			t.Errorf("resolverRules(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadProc(t *testing.T) {
	for _, tt := range []struct {
		name, stat string
		ok         bool
		state      byte
		pgid       int
	}{
		{"plain", "42 (chromium) S 1 40 40 0 -1", true, 'S', 40},
		{"spaces and parens in comm", "42 (a (b) c) Z 1 41 41 0", true, 'Z', 41},
		{"cut short", "42 (chromium) S 1", false, 0, 0},
		{"no comm", "42 chromium S 1 40", false, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(tt.stat), 0o600); err != nil {
				t.Fatal(err)
			}
			p, ok := readProc(42, dir)
			if ok != tt.ok || (ok && (p.state != tt.state || p.pgid != tt.pgid)) {
				t.Errorf("readProc = %+v %v, want state %c pgid %d ok %v", p, ok, tt.state, tt.pgid, tt.ok)
			}
		})
	}
	// This process, read for real.
	self := processes()
	found := false
	for _, p := range self {
		found = found || p.pid == os.Getpid()
	}
	if !found {
		t.Error("processes() does not list this process")
	}
}

func TestAnswerChallenge(t *testing.T) {
	const origin = "https://ec2-1.example:5000"
	challenge := func(id, from string, src fetch.AuthChallengeSource) fetch.EventAuthRequired {
		return fetch.EventAuthRequired{RequestID: fetch.RequestID(id), AuthChallenge: &fetch.AuthChallenge{Source: src, Origin: from, Scheme: "basic"}}
	}
	provide, cancel := fetch.AuthChallengeResponseResponseProvideCredentials, fetch.AuthChallengeResponseResponseCancelAuth
	for _, tt := range []struct {
		name string
		user string
		evs  []fetch.EventAuthRequired
		want []fetch.AuthChallengeResponseResponse
	}{
		{"the server, once", "admin", []fetch.EventAuthRequired{challenge("1", origin, fetch.AuthChallengeSourceServer)}, []fetch.AuthChallengeResponseResponse{provide}},
		{"asked again: wrong credentials", "admin", []fetch.EventAuthRequired{challenge("1", origin, fetch.AuthChallengeSourceServer), challenge("1", origin, fetch.AuthChallengeSourceServer)}, []fetch.AuthChallengeResponseResponse{provide, cancel}},
		{"another origin", "admin", []fetch.EventAuthRequired{challenge("1", "https://evil.example", fetch.AuthChallengeSourceServer)}, []fetch.AuthChallengeResponseResponse{cancel}},
		{"another port", "admin", []fetch.EventAuthRequired{challenge("1", "https://ec2-1.example:5001", fetch.AuthChallengeSourceServer)}, []fetch.AuthChallengeResponseResponse{cancel}},
		{"a proxy", "admin", []fetch.EventAuthRequired{challenge("1", origin, fetch.AuthChallengeSourceProxy)}, []fetch.AuthChallengeResponseResponse{cancel}},
		{"no credentials to give", "", []fetch.EventAuthRequired{challenge("1", origin, fetch.AuthChallengeSourceServer)}, []fetch.AuthChallengeResponseResponse{cancel}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &watch{origin: origin, user: tt.user, password: "pw", answered: map[fetch.RequestID]bool{}}
			for i, ev := range tt.evs {
				got := w.answer(ev)
				if got.Response != tt.want[i] {
					t.Errorf("challenge %d: %s, want %s", i, got.Response, tt.want[i])
				}
				if got.Response != provide && got.Password != "" {
					t.Errorf("challenge %d: a refusal carries the password", i)
				}
			}
			if w.challenges() != len(tt.evs) {
				t.Errorf("counted %d challenges, want %d", w.challenges(), len(tt.evs))
			}
		})
	}
}

func TestRunsSearchLog(t *testing.T) {
	const origin = "https://ec2-1.example:5000"
	sent := func(id, method, url string) *network.EventRequestWillBeSent {
		return &network.EventRequestWillBeSent{RequestID: network.RequestID(id), Request: &network.Request{Method: method, URL: url}}
	}
	got := func(id string, status int64) *network.EventResponseReceived {
		return &network.EventResponseReceived{RequestID: network.RequestID(id), Response: &network.Response{Status: status}}
	}
	search := origin + runsSearchPath
	for _, tt := range []struct {
		name    string
		evs     []any
		answers string
		failed  bool
	}{
		{"none yet", nil, "", false},
		{"refused", []any{sent("1", "POST", search), got("1", 403)}, "403", true},
		{"refused, then let through", []any{sent("1", "POST", search), got("1", 403), sent("2", "POST", search), got("2", 200)}, "403,200", false},
		{"one still pending", []any{sent("1", "POST", search), got("1", 403), sent("2", "POST", search)}, "403", false},
		{"network failure", []any{sent("1", "POST", search), &network.EventLoadingFailed{RequestID: "1", ErrorText: "net::ERR_FAILED"}}, "failed: net::ERR_FAILED", true},
		{"other requests", []any{sent("1", "GET", search), got("1", 405), sent("2", "POST", "https://other.example"+runsSearchPath), got("2", 403)}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &watch{origin: origin, pending: map[network.RequestID]bool{}}
			for _, ev := range tt.evs {
				w.onNetwork(ev)
			}
			if a := strings.Join(w.runsSearch(), ","); a != tt.answers {
				t.Errorf("answers %q, want %q", a, tt.answers)
			}
			if err := w.runsSearchFailed(); (err != nil) != tt.failed {
				t.Errorf("runsSearchFailed = %v, want failed %v", err, tt.failed)
			}
			stop := w.runsSearchFailedFor(30 * time.Millisecond)
			if stop() != nil {
				t.Error("gave up before the error could settle")
			}
			time.Sleep(40 * time.Millisecond)
			if err := stop(); (err != nil) != tt.failed {
				t.Errorf("after settling: %v, want failed %v", err, tt.failed)
			}
		})
	}
}

// TestStepErrorRedacts: whatever put the password into a message (a page,
// the browser), the error does not show it.
func TestStepErrorRedacts(t *testing.T) {
	const pw = "s3cret-Pa55word"
	e := &StepError{Step: StepRunList, Err: errors.New("server said " + pw), Title: "t " + pw,
		PageErrors: []string{"Request error " + pw}, RunsSearch: []string{"403"}, secret: pw}
	msg := e.Error()
	if strings.Contains(msg, pw) {
		t.Errorf("the message shows the password: %s", msg)
	}
	for _, want := range []string{`step "run list"`, "Request error", "runs/search answered: 403"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q: %s", want, msg)
		}
	}
}

func TestUICheckValidate(t *testing.T) {
	ok := UICheck{URI: "https://h:5000/", Experiment: "e", Run: "r", Metric: "m", OutDir: "d"}
	for _, tt := range []struct {
		name              string
		edit              func(*UICheck)
		origin, uri, open string
	}{
		{"https", func(*UICheck) {}, "https://h:5000", "https://h:5000", "https://h:5000/#/experiments"},
		{"loopback proxy", func(c *UICheck) { c.URI = "http://127.0.0.1:8080" }, "http://127.0.0.1:8080",
			"http://127.0.0.1:8080", "http://127.0.0.1:8080/#/experiments"},
		{"mlstack ui's sign-in URL", func(c *UICheck) { c.URI = "http://127.0.0.1:8080/?mlstack-token=tok" }, "http://127.0.0.1:8080",
			"http://127.0.0.1:8080", "http://127.0.0.1:8080/?mlstack-token=tok#/experiments"},
		{"credentials in the URI", func(c *UICheck) { c.URI = "https://admin:pw@h:5000" }, "", "", ""},
		{"not http", func(c *UICheck) { c.URI = "file:///etc/passwd" }, "", "", ""},
		{"no run", func(c *UICheck) { c.Run = "" }, "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			origin, err := c.validate()
			if origin != tt.origin || (err == nil) != (tt.origin != "") {
				t.Errorf("validate = %q, %v; want %q", origin, err, tt.origin)
			}
			if err == nil && (c.URI != tt.uri || c.start != tt.open) {
				t.Errorf("URI %q, first page %q; want %q, %q", c.URI, c.start, tt.uri, tt.open)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("the error echoes the URI's password: %v", err)
			}
		})
	}
}
