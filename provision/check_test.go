package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

const (
	ckUser      = "admin"
	ckPassword  = "ck-Secret-Password-42xyz"
	ckAccessKey = "AKIAMLSTACKCHECK0001"
	ckSecretKey = "ck/Secret+Access+Key/0123456789abcdefghij"
	ckBucket    = "mlstack-ck-123456789012-eu-west-3"
)

// checkServers are a minimal MLflow API and S3 endpoint that accept what a
// passing check does (package server tests every way a check can fail).
func checkServers(t *testing.T) (mlURI, s3URI string) {
	t.Helper()
	var mu sync.Mutex
	objects := map[string][]byte{}
	ml := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		switch {
		case r.URL.Path == "/health":
			_, _ = w.Write([]byte("OK"))
		case !ok || u != ckUser || p != ckPassword:
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/api/2.0/mlflow/experiments/create":
			_ = json.NewEncoder(w).Encode(map[string]string{"experiment_id": "1"})
		case r.URL.Path == "/api/2.0/mlflow/experiments/get":
			_ = json.NewEncoder(w).Encode(map[string]any{"experiment": map[string]string{"artifact_location": "s3://" + ckBucket + "/1"}})
		case r.URL.Path == "/api/2.0/mlflow/runs/create":
			_ = json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{"info": map[string]string{"run_id": "r1"}}})
		case r.URL.Path == "/api/2.0/mlflow/metrics/get-history":
			_ = json.NewEncoder(w).Encode(map[string]any{"metrics": []map[string]float64{{"value": 0.5}}})
		default:
			_, _ = w.Write([]byte("{}"))
		}
	}))
	t.Cleanup(ml.Close)
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(r.Header.Get("Authorization"), ckAccessKey) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch r.Method {
		case http.MethodPut:
			b := new(bytes.Buffer)
			_, _ = b.ReadFrom(r.Body)
			objects[r.URL.Path] = b.Bytes()
		case http.MethodGet:
			_, _ = w.Write(objects[r.URL.Path])
		case http.MethodDelete:
			delete(objects, r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(s3.Close)
	return ml.URL, s3.URL
}

// TestCheckReadsStateDir runs Check the way the command does: from the env
// file and state that up writes.
func TestCheckReadsStateDir(t *testing.T) {
	// Not parallel: it sets the process environment (t.Setenv).
	mlURI, s3URI := checkServers(t)
	root := t.TempDir()
	sd := local.StackDir(root, "ck")
	st := &local.Secrets{Stack: "ck", Account: "123456789012", Region: "eu-west-3", MLflowUser: ckUser,
		MLflowPassword: "admin-password-not-for-clients", AccessKeyID: ckAccessKey, SecretAccessKey: ckSecretKey,
		EnvUser: ckUser, Users: map[string]string{ckUser: ckPassword}}
	if err := sd.Save(st); err != nil {
		t.Fatal(err)
	}
	if err := sd.WriteEnv(envVars(st, mlURI, "", "eu-west-3", s3URI)); err != nil {
		t.Fatal(err)
	}
	// Ambient credentials must not leak in: check uses the env file's keys.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	var out, log bytes.Buffer
	err := Check(context.Background(), CheckOptions{Stack: Stack{Name: "ck", StateDir: root}, Streams: Streams{Out: &out, Log: &log}})
	if err != nil {
		t.Fatalf("Check: %v\n%s", err, out.String())
	}
	ckHasLine(t, out.String(), "checking "+mlURI+" as admin")
	ckHasLine(t, out.String(), "✓ S3 put with the scoped keys: s3://"+ckBucket+"/artifacts/mlstack-check/")
	ckNoSecrets(t, out.String()+log.String())

	// Without local state or env file: a clear error, no checks. A setup
	// step that failed would make another case of it, so it fails the test.
	for name, prep := range map[string]func(t *testing.T, dir string){
		"no state":    func(*testing.T, string) {},
		"no env file": func(t *testing.T, dir string) { must(t, local.StackDir(dir, "ck").Save(st)) },
		"env file without password": func(t *testing.T, dir string) {
			d := local.StackDir(dir, "ck")
			must(t, d.Save(st))
			vars := envVars(&local.Secrets{MLflowUser: ckUser, AccessKeyID: ckAccessKey, SecretAccessKey: ckSecretKey}, mlURI, "", "eu-west-3", "")
			must(t, d.WriteEnv(vars))
		},
		"damaged env file": func(t *testing.T, dir string) {
			d := local.StackDir(dir, "ck")
			must(t, d.Save(st))
			must(t, os.WriteFile(d.EnvFile(), []byte("export A='"), 0o600))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			prep(t, dir)
			var out bytes.Buffer
			err := Check(context.Background(), CheckOptions{Stack: Stack{Name: "ck", StateDir: dir}, Streams: Streams{Out: &out}})
			if err == nil || strings.Contains(out.String(), "✓") {
				t.Errorf("err = %v, out:\n%s", err, out.String())
			}
			if err != nil && strings.Contains(err.Error(), ckPassword) {
				t.Errorf("error holds the password: %v", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "ck", "env")); err != nil {
		t.Fatal(err)
	}
	if err := Check(context.Background(), CheckOptions{Stack: Stack{Name: "Bad Name", StateDir: root}}); !cloud.IsUsage(err) {
		t.Errorf("bad stack name: err = %v, want a usage error", err)
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

func ckNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{ckPassword, ckSecretKey} {
		if strings.Contains(out, s) {
			t.Errorf("output contains a secret:\n%s", out)
		}
	}
}
