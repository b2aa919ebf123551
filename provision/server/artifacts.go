package server

// Proxied artifacts: the server's artifact API (mlflow server
// --serve-artifacts), which stores them in the stack bucket with its
// role. MLflow's client turns an mlflow-artifacts:/PATH location into
// these calls against the tracking URI.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// proxiedScheme starts the artifact location of experiments made while
// artifacts are proxied.
const proxiedScheme = "mlflow-artifacts:/"

// artifactsWhere names the check of the experiment's artifact location.
func artifactsWhere(t *CheckTarget) string {
	if t.Proxied {
		return "experiment artifacts go through the server"
	}
	return "experiment artifacts go to the stack bucket"
}

// artifact sends one request to the artifact API for path (below
// mlflow-artifacts:/), signed in as the client's user.
func (c *Client) artifact(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	endpoint := "/api/2.0/mlflow-artifacts/artifacts/" + strings.Join(segs, "/")
	req, err := http.NewRequestWithContext(ctx, method, c.URI+endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.User, c.Password)
	resp, err := c.http().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // it repeats method and URL
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: %s%s", method, endpoint, resp.Status, errorDetail(raw))
	}
	return raw, nil
}

// checkProxied puts, reads back and deletes one artifact of the run
// through the server, as a client without AWS keys does.
func checkProxied(ctx context.Context, ck *checker, api *Client, runArtifacts string) {
	path := strings.TrimPrefix(runArtifacts, proxiedScheme) + "/mlstack-check.txt"
	body := []byte("mlstack check " + time.Now().UTC().Format(time.RFC3339) + "\n")
	if !ck.run("artifact upload through the server", func() (string, error) {
		if !strings.HasPrefix(runArtifacts, proxiedScheme) {
			return "", fmt.Errorf("the run's artifact URI is %q, want %s…", runArtifacts, proxiedScheme)
		}
		_, err := api.artifact(ctx, http.MethodPut, path, body)
		return proxiedScheme + path, err
	}) {
		ck.skipping = "upload failed"
	}
	ck.run("artifact download returns what was uploaded", func() (string, error) {
		got, err := api.artifact(ctx, http.MethodGet, path, nil)
		if err == nil && !bytes.Equal(got, body) {
			err = fmt.Errorf("got %d bytes that differ from the %d uploaded", len(got), len(body))
		}
		return "", err
	})
	ck.run("artifact delete through the server", func() (string, error) {
		_, err := api.artifact(ctx, http.MethodDelete, path, nil)
		return "", err
	})
}
