package mlflowtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// Seed is what a test logs before it looks at the UI: one experiment, one
// finished run in it, one metric of that run.
type Seed struct {
	Experiment, Run, Metric string
	Value                   float64
}

// Seeded is what Seed created.
type Seeded struct{ ExperimentID, RunID string }

// Seed creates the experiment, the run and its metric through the REST API,
// over the pinned TLS, as the admin user.
func (s *Server) Seed(t testing.TB, sd Seed) Seeded {
	t.Helper()
	c := s.Client(t)
	var exp struct {
		ID string `json:"experiment_id"`
	}
	s.post(t, c, "experiments/create", map[string]any{"name": sd.Experiment}, &exp)
	var run struct {
		Run struct {
			Info struct {
				ID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	now := time.Now().UnixMilli()
	s.post(t, c, "runs/create", map[string]any{"experiment_id": exp.ID, "run_name": sd.Run, "start_time": now}, &run)
	id := run.Run.Info.ID
	s.post(t, c, "runs/log-metric", map[string]any{"run_id": id, "key": sd.Metric, "value": sd.Value, "timestamp": now, "step": 0}, nil)
	s.post(t, c, "runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": now + 1000}, nil)
	if exp.ID == "" || id == "" {
		t.Fatalf("seeding MLflow: experiment id %q, run id %q", exp.ID, id)
	}
	return Seeded{ExperimentID: exp.ID, RunID: id}
}

func (s *Server) post(t testing.TB, c *http.Client, endpoint string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URI+"/api/2.0/mlflow/"+endpoint, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(s.User, s.Password)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %.300s %v", endpoint, resp.Status, raw, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("POST %s: %v", endpoint, fmt.Errorf("decoding %.200s: %w", raw, err))
		}
	}
}
