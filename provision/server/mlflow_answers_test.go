package server

// How the REST client reads answers that are not what check expects: a
// server that lets anonymous requests in or refuses them the wrong way,
// creates without ids, a metric that reads back wrong, long error bodies.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// answering is a server that answers every request with status and body.
func answering(t *testing.T, status int, body string) *Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return &Client{URI: ts.URL, User: "admin", Password: "pw"}
}

func TestRefusesAnonymous(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   string // "" for nil
	}{
		{"401", 401, "You are not authenticated.", ""},
		{"lets anyone in", 200, `{"experiment":{"experiment_id":"0"}}`, "basic auth is not enforced"},
		{"403 instead", 403, "Permission denied", "want 401 Unauthorized, got GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=Default: 403 Forbidden: Permission denied"},
	} {
		err := answering(t, tt.status, tt.body).refusesAnonymous(ctx)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: refusesAnonymous = %v, want %q", tt.name, err, tt.want)
		}
	}
	c := &Client{URI: "http://127.0.0.1:1", HTTP: &http.Client{}}
	if err := c.refusesAnonymous(ctx); err == nil || !strings.Contains(err.Error(), "GET /api/2.0/mlflow/experiments/get-by-name") {
		t.Errorf("refusesAnonymous with nothing listening = %v, want the request's error", err)
	}
}

func TestCreateWithoutIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := answering(t, 200, `{}`)
	if _, _, err := c.createExperiment(ctx, "x"); err == nil || !strings.Contains(err.Error(), "without an experiment_id") {
		t.Errorf("createExperiment on {} = %v", err)
	}
	if _, _, err := c.createRun(ctx, "1"); err == nil || !strings.Contains(err.Error(), "without a run_id") {
		t.Errorf("createRun on {} = %v", err)
	}
	// experiments/create works, experiments/get does not: the id comes back for cleanup.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/experiments/create") {
			_, _ = w.Write([]byte(`{"experiment_id":"7"}`))
			return
		}
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"error_code":"INTERNAL_ERROR","message":"boom"}`))
	}))
	defer ts.Close()
	id, loc, err := (&Client{URI: ts.URL}).createExperiment(ctx, "x")
	if id != "7" || loc != "" || err == nil || !strings.Contains(err.Error(), "INTERNAL_ERROR boom") {
		t.Errorf("createExperiment with a failing get = %q, %q, %v; want the id and the error", id, loc, err)
	}
}

func TestLogMetricReadsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		history string
		want    string // "" for nil
	}{
		{"the value", `{"metrics":[{"key":"mlstack_check","value":0.5,"step":0}]}`, ""},
		{"another value", `{"metrics":[{"value":0.25}]}`, "want one value 0.5"},
		{"twice", `{"metrics":[{"value":0.5},{"value":0.5}]}`, "want one value 0.5"},
		{"none", `{}`, "want one value 0.5"},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/metrics/get-history") {
				_, _ = w.Write([]byte(tt.history))
				return
			}
			_, _ = w.Write([]byte(`{}`))
		}))
		err := (&Client{URI: ts.URL}).logMetric(ctx, "run1")
		ts.Close()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: logMetric = %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := answering(t, 500, `{"error_code":"INTERNAL_ERROR"}`).logMetric(ctx, "run1"); err == nil || !strings.Contains(err.Error(), "runs/log-metric") {
		t.Errorf("logMetric on a 500 = %v", err)
	}
}

func TestErrorDetailShortens(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300)
	for _, tt := range []struct {
		name, body, want string
	}{
		{"MLflow's code and message", `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}`, ": INVALID_PARAMETER_VALUE bad"},
		{"a page on one line", "<html>\n  <body>Bad   Gateway</body>\n</html>", ": <html> <body>Bad Gateway</body> </html>"},
		{"nothing", "  \n", ""},
		{"a long body", long, ": " + strings.Repeat("é", 158) + "…"},
	} {
		got := errorDetail([]byte(tt.body))
		if got != tt.want {
			t.Errorf("%s: errorDetail = %q, want %q", tt.name, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("%s: errorDetail cut a character in two: %q", tt.name, got)
		}
	}
}

// TestDefaultHTTPClient: without an HTTP client the calls still go out,
// with a timeout.
func TestDefaultHTTPClient(t *testing.T) {
	t.Parallel()
	c := answering(t, 200, `OK`)
	if c.http().Timeout == 0 {
		t.Error("the default client has no timeout")
	}
	if err := c.health(context.Background()); err != nil {
		t.Errorf("health through the default client: %v", err)
	}
}

func TestRemoteErrNoStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	boom := errors.New("connection lost")
	if err := remoteErr(cancelled, boom); !errors.Is(err, context.Canceled) {
		t.Errorf("remoteErr after cancel = %v, want context.Canceled", err)
	}
	if err := remoteErr(ctx, boom); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "SSH session: ") {
		t.Errorf("remoteErr(other) = %v, want it wrapped", err)
	}
	if err := remoteErr(ctx, nil); err != nil {
		t.Errorf("remoteErr(nil) = %v", err)
	}
}
