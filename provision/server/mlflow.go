package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client makes MLflow REST calls as one user. Errors carry the method, the
// path and the status, never the credentials (basic auth travels in a header).
type Client struct {
	URI            string // the tracking URI, without a trailing slash
	User, Password string
	// HTTP is the client to use; nil uses one with a 20 s timeout.
	HTTP *http.Client
}

// httpError is a non-2xx answer; its text holds the status and MLflow's
// error code or a short, single-line excerpt of the body.
type httpError struct {
	Status int
	code   string // MLflow's error_code, if it gave one
	text   string
}

func (e *httpError) Error() string { return e.text }

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 20 * time.Second}
}

// do sends one request; with auth it signs in as the client's user, and out
// receives the decoded JSON answer.
func (c *Client) do(ctx context.Context, method, path string, body any, auth bool, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URI+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(c.User, c.Password)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		// url.Error carries method and URL; strip it to the cause for one short line.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %v", method, path, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &httpError{Status: resp.StatusCode, code: errorCode(raw), text: fmt.Sprintf("%s %s: %s%s", method, path, resp.Status, errorDetail(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer is not the expected JSON: %v", method, path, err)
		}
	}
	return nil
}

// errorCode is MLflow's error_code in an error answer, or "".
func errorCode(raw []byte) string {
	var e struct {
		Code string `json:"error_code"`
	}
	_ = json.Unmarshal(raw, &e) // not JSON: no code
	return e.Code
}

// errorDetail is MLflow's error_code and message, or the start of a body.
func errorDetail(raw []byte) string {
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &e) == nil && (e.Code != "" || e.Message != "") {
		return shorten(": " + strings.TrimSpace(e.Code+" "+e.Message))
	}
	s := strings.Join(strings.Fields(string(raw)), " ")
	if s == "" {
		return ""
	}
	return shorten(": " + s)
}

func shorten(s string) string {
	if r := []rune(s); len(r) > 160 {
		return string(r[:160]) + "…"
	}
	return s
}

func (c *Client) post(ctx context.Context, endpoint string, body, out any) error {
	return c.do(ctx, http.MethodPost, "/api/2.0/mlflow/"+endpoint, body, true, out)
}

func (c *Client) get(ctx context.Context, endpoint string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, "/api/2.0/mlflow/"+endpoint+"?"+q.Encode(), nil, true, out)
}

// ChangePassword sets the client user's own password to next; MLflow 3.x
// wants the current one in the body too. The client keeps signing in with
// the old password until the caller switches.
func (c *Client) ChangePassword(ctx context.Context, next string) error {
	return c.do(ctx, http.MethodPatch, "/api/2.0/mlflow/users/update-password",
		map[string]string{"username": c.User, "password": next, "current_password": c.Password}, true, nil)
}

// CheckLogin proves the server accepts the client's user and password.
func (c *Client) CheckLogin(ctx context.Context) error {
	return c.get(ctx, "users/get", url.Values{"username": {c.User}}, nil)
}

func (c *Client) health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/health", nil, false, nil)
}

func (c *Client) refusesAnonymous(ctx context.Context) error {
	err := c.do(ctx, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default", nil, false, nil)
	var he *httpError
	switch {
	case err == nil:
		return errors.New("an unauthenticated request succeeded: basic auth is not enforced")
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		return nil
	case errors.As(err, &he):
		return fmt.Errorf("want 401 Unauthorized, got %s", he.text)
	default:
		return err
	}
}

func (c *Client) createExperiment(ctx context.Context, name string) (id, artifactLocation string, err error) {
	var created struct {
		ID string `json:"experiment_id"`
	}
	if err := c.post(ctx, "experiments/create", map[string]any{"name": name}, &created); err != nil {
		return "", "", err
	}
	if created.ID == "" {
		return "", "", errors.New("experiments/create answered without an experiment_id")
	}
	var got struct {
		Experiment struct {
			ArtifactLocation string `json:"artifact_location"`
		} `json:"experiment"`
	}
	if err := c.get(ctx, "experiments/get", url.Values{"experiment_id": {created.ID}}, &got); err != nil {
		return created.ID, "", err
	}
	return created.ID, got.Experiment.ArtifactLocation, nil
}

func (c *Client) createRun(ctx context.Context, expID string) (id, artifactURI string, err error) {
	var created struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	err = c.post(ctx, "runs/create", map[string]any{
		"experiment_id": expID, "start_time": time.Now().UnixMilli(), "run_name": "mlstack-check",
	}, &created)
	if err != nil {
		return "", "", err
	}
	if created.Run.Info.RunID == "" {
		return "", "", errors.New("runs/create answered without a run_id")
	}
	return created.Run.Info.RunID, created.Run.Info.ArtifactURI, nil
}

func (c *Client) logMetric(ctx context.Context, runID string) error {
	const key, value = "mlstack_check", 0.5
	if err := c.post(ctx, "runs/log-metric", map[string]any{
		"run_id": runID, "key": key, "value": value, "timestamp": time.Now().UnixMilli(), "step": 0,
	}, nil); err != nil {
		return err
	}
	var hist struct {
		Metrics []struct {
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	if err := c.get(ctx, "metrics/get-history", url.Values{"run_id": {runID}, "metric_key": {key}}, &hist); err != nil {
		return err
	}
	if len(hist.Metrics) != 1 || hist.Metrics[0].Value != value {
		return fmt.Errorf("metric history is %+v, want one value %v", hist.Metrics, value)
	}
	return nil
}

// Inventory is what the tracking server holds: the experiments and runs
// that live in its database (deleted ones included: they are there too).
type Inventory struct {
	Experiments, Runs int
}

// Count pages through the experiments and their runs.
func (c *Client) Count(ctx context.Context) (Inventory, error) {
	var inv Inventory
	var ids []string
	err := c.pages(ctx, "experiments/search", map[string]any{"max_results": 1000, "view_type": "ALL"}, func(raw json.RawMessage) error {
		var page struct {
			Experiments []struct {
				ID string `json:"experiment_id"`
			} `json:"experiments"`
		}
		err := json.Unmarshal(raw, &page)
		for _, e := range page.Experiments {
			ids = append(ids, e.ID)
		}
		return err
	})
	inv.Experiments = len(ids)
	// runs/search takes at most 100 experiments a call.
	for start := 0; err == nil && start < len(ids); start += 100 {
		batch := ids[start:min(start+100, len(ids))]
		err = c.pages(ctx, "runs/search", map[string]any{"experiment_ids": batch, "max_results": 1000, "run_view_type": "ALL"},
			func(raw json.RawMessage) error {
				var page struct {
					Runs []json.RawMessage `json:"runs"`
				}
				err := json.Unmarshal(raw, &page)
				inv.Runs += len(page.Runs)
				return err
			})
	}
	return inv, err
}

// pages posts body to a search endpoint and hands each page to read, until
// no next_page_token comes back.
func (c *Client) pages(ctx context.Context, endpoint string, body map[string]any, read func(json.RawMessage) error) error {
	for {
		var raw json.RawMessage
		if err := c.post(ctx, endpoint, body, &raw); err != nil {
			return err
		}
		if err := read(raw); err != nil {
			return fmt.Errorf("%s: %w", endpoint, err)
		}
		var next struct {
			Token string `json:"next_page_token"`
		}
		if err := json.Unmarshal(raw, &next); err != nil || next.Token == "" {
			return err
		}
		body["page_token"] = next.Token
	}
}
