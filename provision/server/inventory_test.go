package server

// Count against a fake of MLflow's search endpoints that pages as MLflow
// does: POST experiments/search and runs/search take max_results and
// page_token and answer next_page_token until the last page, which has
// none (protobuf JSON leaves out empty fields, so an empty page is {}).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type fakeSearch struct {
	pageSize   int            // the server's cap on max_results
	runs       map[string]int // experiment id -> runs in it
	expOrder   []string
	brokenPage string // an endpoint whose second page is not the expected JSON

	mu    sync.Mutex
	calls map[string]int
}

func (f *fakeSearch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	endpoint := strings.TrimPrefix(r.URL.Path, "/api/2.0/mlflow/")
	f.calls[endpoint]++
	mlErr := func(status int, code, msg string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
	}
	if r.Method != http.MethodPost {
		mlErr(405, "ENDPOINT_NOT_FOUND", r.Method+" "+r.URL.Path)
		return
	}
	var body struct {
		MaxResults    int      `json:"max_results"`
		PageToken     string   `json:"page_token"`
		ViewType      string   `json:"view_type"`
		RunViewType   string   `json:"run_view_type"`
		ExperimentIDs []string `json:"experiment_ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		mlErr(400, "MALFORMED_REQUEST", err.Error())
		return
	}
	start := 0
	if body.PageToken != "" {
		var err error
		if start, err = strconv.Atoi(body.PageToken); err != nil {
			mlErr(400, "INVALID_PARAMETER_VALUE", "Invalid page token")
			return
		}
		if endpoint == f.brokenPage {
			_, _ = w.Write([]byte(`{"experiments": "not a list", "runs": 7}`))
			return
		}
	}
	var items []any
	switch endpoint {
	case "experiments/search":
		if body.ViewType != "ALL" {
			mlErr(400, "INVALID_PARAMETER_VALUE", "want view_type ALL, got "+body.ViewType)
			return
		}
		for _, id := range f.expOrder {
			items = append(items, map[string]any{"experiment_id": id, "name": "exp-" + id})
		}
	case "runs/search":
		if body.RunViewType != "ALL" {
			mlErr(400, "INVALID_PARAMETER_VALUE", "want run_view_type ALL, got "+body.RunViewType)
			return
		}
		if len(body.ExperimentIDs) > 100 {
			mlErr(400, "INVALID_PARAMETER_VALUE", fmt.Sprintf("experiment_ids has %d items, at most 100", len(body.ExperimentIDs)))
			return
		}
		for _, e := range body.ExperimentIDs {
			for i := range f.runs[e] {
				items = append(items, map[string]any{"info": map[string]any{"run_id": fmt.Sprintf("%s-%d", e, i), "experiment_id": e}})
			}
		}
	default:
		mlErr(404, "ENDPOINT_NOT_FOUND", r.URL.Path)
		return
	}
	n := min(body.MaxResults, f.pageSize)
	end := min(start+n, len(items))
	page := map[string]any{}
	if end > start {
		key := strings.Split(endpoint, "/")[0]
		page[key] = items[start:end]
	}
	if end < len(items) {
		page["next_page_token"] = strconv.Itoa(end)
	}
	_ = json.NewEncoder(w).Encode(page)
}

func TestCount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		exps     int
		runsEach int
		pageSize int
	}{
		{"empty server", 0, 0, 1000},
		{"one page each", 3, 2, 1000},
		{"several pages", 7, 3, 2},
		{"more experiments than runs/search takes", 250, 1, 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeSearch{pageSize: tt.pageSize, runs: map[string]int{}}
			for i := range tt.exps {
				id := strconv.Itoa(i)
				f.expOrder = append(f.expOrder, id)
				f.runs[id] = tt.runsEach
			}
			ts := httptest.NewServer(f)
			defer ts.Close()
			c := &Client{URI: ts.URL, User: "admin", Password: "pw"}
			inv, err := c.Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := (Inventory{Experiments: tt.exps, Runs: tt.exps * tt.runsEach}); inv != want {
				t.Errorf("Count = %+v, want %+v", inv, want)
			}
			f.mu.Lock()
			searches := f.calls["experiments/search"]
			f.mu.Unlock()
			if tt.exps > tt.pageSize && searches < 2 {
				t.Errorf("experiments/search called %d times, want it to page", searches)
			}
		})
	}
}

func TestCountErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		broken string
		want   string
	}{
		{"experiments page not JSON", "experiments/search", "experiments/search: json"},
		{"runs page not JSON", "runs/search", "runs/search: json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeSearch{pageSize: 1, runs: map[string]int{"1": 2, "2": 2}, expOrder: []string{"1", "2"}, brokenPage: tt.broken}
			ts := httptest.NewServer(f)
			defer ts.Close()
			c := &Client{URI: ts.URL, User: "admin", Password: "pw"}
			if _, err := c.Count(context.Background()); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Count = %v, want an error starting %q", err, tt.want)
			}
		})
	}

	t.Run("server refuses", func(t *testing.T) {
		t.Parallel()
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("Permission denied"))
		}))
		defer ts.Close()
		c := &Client{URI: ts.URL, User: "reader", Password: "pw"}
		inv, err := c.Count(context.Background())
		if err == nil || !strings.Contains(err.Error(), "403 Forbidden: Permission denied") {
			t.Errorf("Count = %+v, %v; want the 403", inv, err)
		}
	})
}
