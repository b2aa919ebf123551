package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const (
	ckUser      = "admin"
	ckPassword  = "ck-Secret-Password-42xyz"
	ckAccessKey = "AKIAMLSTACKCHECK0001"
	ckSecretKey = "ck/Secret+Access+Key/0123456789abcdefghij"
	ckBucket    = "mlstack-ck-123456789012-eu-west-3"
)

// fakeMLflow is the part of MLflow's REST API that check uses, with basic
// auth, and knobs for each way it can go wrong.
type fakeMLflow struct {
	healthStatus   int  // 0: 200
	noAuth         bool // accept requests without credentials
	rejectAll      bool // 401 even with the right credentials, echoing the password
	failRunCreate  bool
	artifactBucket string // "" : ckBucket
	proxied        bool   // artifacts through the server (mlflow-artifacts:/)
	denyArtifacts  bool   // the artifact API answers 403

	mu      sync.Mutex
	calls   []string
	exps    map[string]string // id -> name
	runs    map[string]string // id -> experiment id
	metrics map[string][]float64
	objs    map[string][]byte // artifacts stored through the server
}

func (f *fakeMLflow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if f.exps == nil {
		f.exps, f.runs, f.metrics, f.objs = map[string]string{}, map[string]string{}, map[string][]float64{}, map[string][]byte{}
	}
	if r.URL.Path == "/health" {
		if f.healthStatus != 0 {
			w.WriteHeader(f.healthStatus)
			return
		}
		_, _ = io.WriteString(w, "OK")
		return
	}
	u, p, ok := r.BasicAuth()
	if f.rejectAll && ok {
		// A server that echoes what it got must not make check print it.
		http.Error(w, `{"error_code":"UNAUTHENTICATED","message":"bad password `+p+`"}`, http.StatusUnauthorized)
		return
	}
	if !f.noAuth && (!ok || u != ckUser || p != ckPassword) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		http.Error(w, "You are not authenticated.", http.StatusUnauthorized)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	reply := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	mlErr := func(status int, code, msg string) {
		w.WriteHeader(status)
		reply(map[string]string{"error_code": code, "message": msg})
	}
	bucket := f.artifactBucket
	if bucket == "" {
		bucket = ckBucket
	}
	root := "s3://" + bucket + "/artifacts/"
	if f.proxied {
		root = "mlflow-artifacts:/"
	}
	if path, ok := strings.CutPrefix(r.URL.Path, "/api/2.0/mlflow-artifacts/artifacts/"); ok {
		f.serveArtifact(w, r, path, mlErr)
		return
	}
	switch r.URL.Path {
	case "/api/2.0/mlflow/experiments/get-by-name":
		reply(map[string]any{"experiment": map[string]any{"experiment_id": "0", "name": "Default"}})
	case "/api/2.0/mlflow/experiments/create":
		id := fmt.Sprint(len(f.exps) + 1)
		f.exps[id] = fmt.Sprint(body["name"])
		reply(map[string]any{"experiment_id": id})
	case "/api/2.0/mlflow/experiments/get":
		id := r.URL.Query().Get("experiment_id")
		if _, ok := f.exps[id]; !ok {
			mlErr(404, "RESOURCE_DOES_NOT_EXIST", "no experiment "+id)
			return
		}
		reply(map[string]any{"experiment": map[string]any{"experiment_id": id, "artifact_location": root + id}})
	case "/api/2.0/mlflow/runs/create":
		if f.failRunCreate {
			mlErr(500, "INTERNAL_ERROR", "database is locked")
			return
		}
		id := fmt.Sprintf("run%d", len(f.runs)+1)
		f.runs[id] = fmt.Sprint(body["experiment_id"])
		uri := root + fmt.Sprint(body["experiment_id"]) + "/" + id + "/artifacts"
		reply(map[string]any{"run": map[string]any{"info": map[string]any{"run_id": id, "artifact_uri": uri}}})
	case "/api/2.0/mlflow/runs/log-metric":
		id := fmt.Sprint(body["run_id"])
		v, _ := body["value"].(float64)
		f.metrics[id+"/"+fmt.Sprint(body["key"])] = append(f.metrics[id+"/"+fmt.Sprint(body["key"])], v)
		reply(map[string]any{})
	case "/api/2.0/mlflow/metrics/get-history":
		q := r.URL.Query()
		var ms []map[string]any
		for _, v := range f.metrics[q.Get("run_id")+"/"+q.Get("metric_key")] {
			ms = append(ms, map[string]any{"value": v})
		}
		reply(map[string]any{"metrics": ms})
	case "/api/2.0/mlflow/runs/delete":
		delete(f.runs, fmt.Sprint(body["run_id"]))
		reply(map[string]any{})
	case "/api/2.0/mlflow/experiments/delete":
		delete(f.exps, fmt.Sprint(body["experiment_id"]))
		reply(map[string]any{})
	default:
		mlErr(404, "ENDPOINT_NOT_FOUND", r.URL.Path)
	}
}

// serveArtifact is the artifact API of a server that serves artifacts.
func (f *fakeMLflow) serveArtifact(w http.ResponseWriter, r *http.Request, path string, mlErr func(int, string, string)) {
	switch {
	case !f.proxied:
		mlErr(404, "ENDPOINT_NOT_FOUND", r.URL.Path)
	case f.denyArtifacts:
		mlErr(403, "PERMISSION_DENIED", "Permission denied")
	case r.Method == http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.objs[path] = b
	case r.Method == http.MethodGet:
		b, ok := f.objs[path]
		if !ok {
			mlErr(404, "RESOURCE_DOES_NOT_EXIST", path)
			return
		}
		_, _ = w.Write(b)
	case r.Method == http.MethodDelete:
		delete(f.objs, path)
	}
}

func (f *fakeMLflow) called(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == call {
			return true
		}
	}
	return false
}

// fakeS3 is a path-style object store that checks the access key id in the
// SigV4 Authorization header (not the signature).
type fakeS3 struct {
	denyPut bool
	mu      sync.Mutex
	objs    map[string][]byte
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs == nil {
		f.objs = map[string][]byte{}
	}
	s3err := func(status int, code string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s says no</Message></Error>`, code, code)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "Credential="+ckAccessKey+"/") {
		s3err(403, "InvalidAccessKeyId")
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/"+ckBucket+"/") {
		s3err(404, "NoSuchBucket")
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/"+ckBucket+"/")
	switch r.Method {
	case http.MethodPut:
		if f.denyPut {
			s3err(403, "AccessDenied")
			return
		}
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Encoding") == "aws-chunked" {
			s3err(501, "NotImplemented")
			return
		}
		f.objs[key] = b
	case http.MethodGet:
		b, ok := f.objs[key]
		if !ok {
			s3err(404, "NoSuchKey")
			return
		}
		_, _ = w.Write(b)
	case http.MethodDelete:
		delete(f.objs, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		s3err(405, "MethodNotAllowed")
	}
}

func newCheckTarget(t *testing.T, ml *fakeMLflow, s3 *fakeS3) CheckTarget {
	t.Helper()
	mlSrv := httptest.NewServer(ml)
	t.Cleanup(mlSrv.Close)
	s3Srv := httptest.NewServer(s3)
	t.Cleanup(s3Srv.Close)
	return CheckTarget{
		MLflow:    Client{URI: mlSrv.URL, User: ckUser, Password: ckPassword},
		AccessKey: ckAccessKey, SecretKey: ckSecretKey,
		Region: "eu-west-3", S3Endpoint: s3Srv.URL, Bucket: ckBucket,
	}
}

// lines returns the check lines that start with mark.
func ckLines(out, mark string) []string {
	var l []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, mark) {
			l = append(l, strings.TrimSpace(line))
		}
	}
	return l
}

func ckNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{ckPassword, ckSecretKey} {
		if strings.Contains(out, s) {
			t.Errorf("output contains a secret:\n%s", out)
		}
	}
}

func ckHasLine(t *testing.T, out, prefix string) {
	t.Helper()
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, prefix) {
			return
		}
	}
	t.Errorf("no line starting %q in:\n%s", prefix, out)
}

func TestCheckAllPass(t *testing.T) {
	ml, s3 := &fakeMLflow{}, &fakeS3{}
	var out bytes.Buffer
	if err := Check(context.Background(), newCheckTarget(t, ml, s3), &out); err != nil {
		t.Fatalf("Check: %v\n%s", err, out.String())
	}
	if bad := ckLines(out.String(), "✗"); len(bad) > 0 {
		t.Errorf("failed lines: %v", bad)
	}
	if got := len(ckLines(out.String(), "✓")); got != 11 {
		t.Errorf("%d ✓ lines, want 11:\n%s", got, out.String())
	}
	ckHasLine(t, out.String(), "all 11 checks passed")
	// Clean: what check created is gone again.
	if len(ml.exps) != 0 || len(ml.runs) != 0 || len(s3.objs) != 0 {
		t.Errorf("left behind: experiments %v, runs %v, objects %d", ml.exps, ml.runs, len(s3.objs))
	}
	ckNoSecrets(t, out.String())
}

func TestCheckReportsFailures(t *testing.T) {
	tests := []struct {
		name     string
		ml       *fakeMLflow
		s3       *fakeS3
		failed   []string // prefixes of ✗ lines that must appear
		passed   []string // prefixes of ✓ lines that must still appear
		nFailed  int
		notCalls []string
		calls    []string
	}{
		{
			name:    "server down",
			ml:      &fakeMLflow{healthStatus: http.StatusBadGateway},
			s3:      &fakeS3{},
			failed:  []string{"✗ server answers /health: GET /health: 502 Bad Gateway", "✗ create experiment: not run (the server does not answer)"},
			passed:  []string{"✓ S3 put with the scoped keys", "✓ S3 get", "✓ S3 delete"},
			nFailed: 6, notCalls: []string{"POST /api/2.0/mlflow/experiments/create"},
		},
		{
			name:    "auth not enforced",
			ml:      &fakeMLflow{noAuth: true},
			s3:      &fakeS3{},
			failed:  []string{"✗ API refuses requests without credentials: an unauthenticated request succeeded"},
			passed:  []string{"✓ create experiment", "✓ log and read back a metric"},
			nFailed: 1,
		},
		{
			name:    "wrong password, echoed by the server",
			ml:      &fakeMLflow{rejectAll: true},
			s3:      &fakeS3{},
			failed:  []string{"✗ create experiment: POST /api/2.0/mlflow/experiments/create: 401 Unauthorized: UNAUTHENTICATED bad password ***", "✗ create run: not run (no experiment)"},
			passed:  []string{"✓ server answers /health", "✓ API refuses requests without credentials"},
			nFailed: 4,
		},
		{
			name:    "artifacts elsewhere",
			ml:      &fakeMLflow{artifactBucket: "someone-elses-bucket"},
			s3:      &fakeS3{},
			failed:  []string{`✗ experiment artifacts go to the stack bucket: artifact location is "s3://someone-elses-bucket/artifacts/1"`},
			passed:  []string{"✓ create run", "✓ delete experiment"},
			nFailed: 1,
		},
		{
			name:    "run creation fails, experiment still cleaned up",
			ml:      &fakeMLflow{failRunCreate: true},
			s3:      &fakeS3{},
			failed:  []string{"✗ create run: POST /api/2.0/mlflow/runs/create: 500 Internal Server Error: INTERNAL_ERROR database is locked", "✗ log and read back a metric: not run (no run)"},
			passed:  []string{"✓ delete experiment"},
			nFailed: 2, calls: []string{"POST /api/2.0/mlflow/experiments/delete"},
		},
		{
			name:    "bucket denies writes",
			ml:      &fakeMLflow{},
			s3:      &fakeS3{denyPut: true},
			failed:  []string{"✗ S3 put with the scoped keys: AccessDenied: AccessDenied says no", "✗ S3 get returns what was put: not run (put failed)", "✗ S3 delete: not run (put failed)"},
			passed:  []string{"✓ delete experiment"},
			nFailed: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Check(context.Background(), newCheckTarget(t, tt.ml, tt.s3), &out)
			var cf *CheckFailedError
			if !errors.As(err, &cf) {
				t.Fatalf("err = %v, want a CheckFailedError\n%s", err, out.String())
			}
			if cf.Failed != tt.nFailed || len(ckLines(out.String(), "✗")) != tt.nFailed {
				t.Errorf("%d failed (%d ✗ lines), want %d:\n%s", cf.Failed, len(ckLines(out.String(), "✗")), tt.nFailed, out.String())
			}
			for _, p := range append(tt.failed, tt.passed...) {
				ckHasLine(t, out.String(), p)
			}
			ckHasLine(t, out.String(), fmt.Sprintf("%d of %d checks failed", cf.Failed, cf.Total))
			for _, c := range tt.notCalls {
				if tt.ml.called(c) {
					t.Errorf("called %s", c)
				}
			}
			for _, c := range tt.calls {
				if !tt.ml.called(c) {
					t.Errorf("did not call %s", c)
				}
			}
			ckNoSecrets(t, out.String())
		})
	}
}

func TestCheckUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	tgt := CheckTarget{MLflow: Client{URI: dead, User: ckUser, Password: ckPassword}, AccessKey: ckAccessKey, SecretKey: ckSecretKey,
		Region: "eu-west-3", S3Endpoint: dead, Bucket: ckBucket}
	var out bytes.Buffer
	err := Check(context.Background(), tgt, &out)
	var cf *CheckFailedError
	if !errors.As(err, &cf) || cf.Failed != cf.Total {
		t.Fatalf("err = %v, want every check failed\n%s", err, out.String())
	}
	ckHasLine(t, out.String(), "✗ server answers /health: GET /health: dial tcp")
	ckHasLine(t, out.String(), "✗ S3 put with the scoped keys: dial tcp")
	ckNoSecrets(t, out.String())
}

// TestCheckProxied: with proxied artifacts check uses no AWS key and no
// S3: the artifact goes into the run through the server and is gone after;
// a server that refuses it, or an experiment still on s3://, fails.
func TestCheckProxied(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ml      *fakeMLflow
		failed  []string
		nFailed int
	}{
		{"all pass", &fakeMLflow{proxied: true}, nil, 0},
		{"server refuses artifacts", &fakeMLflow{proxied: true, denyArtifacts: true}, []string{
			"✗ artifact upload through the server: PUT /api/2.0/mlflow-artifacts/artifacts/1/run1/artifacts/mlstack-check.txt: 403 Forbidden: PERMISSION_DENIED",
			"✗ artifact download returns what was uploaded: not run (upload failed)"}, 3},
		{"experiments still on s3", &fakeMLflow{}, []string{
			`✗ experiment artifacts go through the server: artifact location is "s3://` + ckBucket + `/artifacts/1", want mlflow-artifacts:/…`,
			`✗ artifact upload through the server: the run's artifact URI is "s3://`}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s3 := &fakeS3{}
			target := newCheckTarget(t, tt.ml, s3)
			target.Proxied, target.AccessKey, target.SecretKey = true, "", ""
			var out bytes.Buffer
			err := Check(context.Background(), target, &out)
			if got := len(ckLines(out.String(), "✗")); got != tt.nFailed || (err == nil) != (tt.nFailed == 0) {
				t.Errorf("%d ✗ lines, err %v; want %d:\n%s", got, err, tt.nFailed, out.String())
			}
			for _, p := range tt.failed {
				ckHasLine(t, out.String(), p)
			}
			if tt.nFailed == 0 {
				ckHasLine(t, out.String(), "✓ artifact download returns what was uploaded")
				ckHasLine(t, out.String(), "all 11 checks passed")
			}
			if len(s3.objs) != 0 || len(tt.ml.objs) != 0 || len(tt.ml.runs) != 0 {
				t.Errorf("left behind: %d objects in S3, %d through the server, runs %v", len(s3.objs), len(tt.ml.objs), tt.ml.runs)
			}
		})
	}
}
