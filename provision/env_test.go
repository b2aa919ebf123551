package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

// envStack writes the env file of stack demo in a fresh state dir.
func envStack(t *testing.T, s3Endpoint string) string {
	t.Helper()
	dir := t.TempDir()
	sec := &local.Secrets{MLflowUser: "admin", MLflowPassword: "admin-pw", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s3cr3t/+=",
		EnvUser: "alice", Users: map[string]string{"alice": "pw123"}}
	if err := local.StackDir(dir, "demo").WriteEnv(envVars(sec, "https://ec2-1-2-3-4.example:5000", "/state/demo/server.crt", "eu-west-3", s3Endpoint)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runEnv is env with its state in dir; AWS is not at hand.
func runEnv(t *testing.T, dir, format string) (string, error) {
	t.Helper()
	return runEnvIn(context.Background(), dir, format)
}

// runEnvIn is runEnv under ctx (f.ctx(): over a fake AWS).
func runEnvIn(ctx context.Context, dir, format string) (string, error) {
	var out bytes.Buffer
	err := Env(ctx, EnvOptions{Stack: Stack{Name: "demo", StateDir: dir}, Streams: Streams{Out: &out}, Format: format})
	return out.String(), err
}

func TestEnvFormats(t *testing.T) {
	t.Parallel()
	dir := envStack(t, "")
	out, err := runEnv(t, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export MLFLOW_TRACKING_URI='https://ec2-1-2-3-4.example:5000'", "export MLFLOW_TRACKING_USERNAME='alice'",
		"export MLFLOW_TRACKING_SERVER_CERT_PATH='/state/demo/server.crt'",
		"export AWS_SECRET_ACCESS_KEY='s3cr3t/+='", "export AWS_DEFAULT_REGION='eu-west-3'"} {
		if !strings.Contains(out, want) {
			t.Errorf("shell output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "MLFLOW_S3_ENDPOINT_URL") {
		t.Error("endpoint without an override")
	}

	out, err = runEnv(t, dir, "dotenv")
	if err != nil || !strings.Contains(out, "MLFLOW_TRACKING_PASSWORD=") || strings.Contains(out, "export ") {
		t.Errorf("dotenv: %v\n%s", err, out)
	}

	out, err = runEnv(t, dir, "json")
	var m map[string]string
	if err != nil || json.Unmarshal([]byte(out), &m) != nil || m["AWS_ACCESS_KEY_ID"] != "AKIAEXAMPLE" || len(m) != 7+len(clearedVars)+len(clearedAWSVars) {
		t.Errorf("json: %v\n%s", err, out)
	}
	for _, name := range append(clearedAWSVars, clearedVars...) {
		if v, ok := m[name]; !ok || v != "" {
			t.Errorf("json does not clear %s: %q", name, v)
		}
	}

	if _, err := runEnv(t, dir, "yaml"); !cloud.IsUsage(err) || !strings.Contains(err.Error(), "use shell, dotenv, json or github") {
		t.Errorf("yaml: %v", err)
	}
	if _, err := runEnv(t, dir, "nope"); !cloud.IsUsage(err) {
		t.Errorf("unknown format: %v", err)
	}
}

// TestEnvArtifactsModes: a proxied stack's env file has no AWS variable
// and leaves the caller's own AWS session alone; a direct one sets the
// key and clears a session token that would spoil it.
func TestEnvArtifactsModes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode       string
		want, lack []string
	}{
		{ArtifactsProxied, []string{"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"},
			[]string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "MLFLOW_S3_ENDPOINT_URL", "AWS_SESSION_TOKEN"}},
		{ArtifactsDirect, []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "MLFLOW_S3_ENDPOINT_URL", "AWS_SESSION_TOKEN"}, nil},
		{"", []string{"AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"}, nil},
	} {
		t.Run("mode "+tt.mode, func(t *testing.T) {
			dir := t.TempDir()
			sec := &local.Secrets{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s3cr3t", EnvUser: "alice",
				Users: map[string]string{"alice": "pw123"}, Artifacts: tt.mode}
			vars := envVars(sec, "https://ec2-1-2-3-4.example:5000", "/state/demo/server.crt", "eu-west-3", "http://127.0.0.1:9000")
			must(t, local.StackDir(dir, "demo").WriteEnv(vars))
			out, err := runEnv(t, dir, "json")
			var m map[string]string
			if err != nil || json.Unmarshal([]byte(out), &m) != nil {
				t.Fatalf("env: %v\n%s", err, out)
			}
			for _, k := range tt.want {
				if _, ok := m[k]; !ok {
					t.Errorf("lacks %s", k)
				}
			}
			for _, k := range tt.lack {
				if _, ok := m[k]; ok {
					t.Errorf("has %s", k)
				}
			}
		})
	}
}

func TestEnvWithS3Endpoint(t *testing.T) {
	t.Parallel()
	out, err := runEnv(t, envStack(t, "http://127.0.0.1:9000"), "dotenv")
	if err != nil || !strings.Contains(out, "MLFLOW_S3_ENDPOINT_URL=") || !strings.Contains(out, "127.0.0.1:9000") {
		t.Errorf("%v\n%s", err, out)
	}
}

func TestEnvGitHub(t *testing.T) {
	// Not parallel: it sets the process environment (t.Setenv).
	dir := envStack(t, "")
	// Without $GITHUB_ENV: mask lines, then the variables on stdout.
	t.Setenv("GITHUB_ENV", "")
	out, err := runEnv(t, dir, "github")
	if err != nil {
		t.Fatal(err)
	}
	mask := strings.Index(out, "::add-mask::s3cr3t/+=")
	pw := strings.Index(out, "::add-mask::pw123")
	val := strings.Index(out, "AWS_SECRET_ACCESS_KEY<<")
	if mask < 0 || pw < 0 || val < 0 || mask > val || pw > val {
		t.Errorf("github output (secrets masked before they appear):\n%s", out)
	}

	// With $GITHUB_ENV: the variables are appended there, only masks on stdout.
	ghEnv := filepath.Join(t.TempDir(), "github_env")
	must(t, os.WriteFile(ghEnv, []byte("EARLIER=1\n"), 0o600))
	t.Setenv("GITHUB_ENV", ghEnv)
	out, err = runEnv(t, dir, "github")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "<<") || !strings.Contains(out, "::add-mask::") {
		t.Errorf("stdout with $GITHUB_ENV:\n%s", out)
	}
	data := readFile(t, ghEnv)
	if !strings.HasPrefix(string(data), "EARLIER=1\n") || !strings.Contains(string(data), "MLFLOW_TRACKING_URI<<") {
		t.Errorf("$GITHUB_ENV:\n%s", data)
	}

	t.Setenv("GITHUB_ENV", filepath.Join(t.TempDir(), "missing", "file"))
	if _, err := runEnv(t, dir, "github"); err == nil || !strings.Contains(err.Error(), "opening $GITHUB_ENV") {
		t.Errorf("unwritable $GITHUB_ENV: %v", err)
	}
}

func TestEnvErrors(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	// Nothing here, nothing in AWS: up creates it; creds rotate would not help.
	empty := t.TempDir()
	_, err := runEnvIn(f.Ctx(), empty, "")
	if err == nil || !strings.Contains(err.Error(), "stack demo does not exist in account "+cloudfake.FakeAccount+", "+cloudfake.FakeRegion) ||
		!strings.Contains(err.Error(), "`mlstack up --stack demo --state-dir "+empty+"` creates it") || strings.Contains(err.Error(), "creds rotate") {
		t.Errorf("missing env, no stack: %v", err)
	}
	// Nothing here, the stack in AWS: its secrets are elsewhere.
	upStack(t, f, "demo")
	if _, err = runEnvIn(f.Ctx(), empty, ""); err == nil || !strings.Contains(err.Error(), "no local state for stack demo") ||
		!strings.Contains(err.Error(), "`mlstack creds rotate --stack demo --state-dir "+empty+"` issues a new key") {
		t.Errorf("missing env, the stack elsewhere: %v", err)
	}
	// AWS cannot be asked: both are said.
	f.FailNext("GetUser", cloudfake.AwsErr("AccessDenied"), 1)
	if _, err = runEnvIn(f.Ctx(), empty, ""); err == nil || !strings.Contains(err.Error(), "AWS could not tell whether the stack exists") ||
		!strings.Contains(err.Error(), "mlstack status --stack demo") {
		t.Errorf("missing env, AWS not asked: %v", err)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("env made mutating calls %v", m)
	}
	// A state but no env file: up writes it, with the CIDRs it had.
	dir := t.TempDir()
	sd := local.StackDir(dir, "demo")
	must(t, sd.Save(&local.Secrets{Stack: "demo", Account: cloudfake.FakeAccount, Region: "us-east-1", AllowCIDRs: []string{"198.51.100.7/32"}, SSH: true}))
	if _, err = runEnvIn(f.Ctx(), dir, ""); err == nil ||
		!strings.Contains(err.Error(), "`mlstack up --stack demo --region us-east-1 --state-dir "+dir+" --allow-cidr 198.51.100.7/32 --ssh` writes it") {
		t.Errorf("state, no env file: %v", err)
	}
	// A damaged one.
	must(t, os.WriteFile(sd.EnvFile(), []byte("export X='unterminated\n"), 0o600))
	if _, err := runEnvIn(f.Ctx(), dir, ""); err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "`mlstack up --stack demo --region us-east-1") {
		t.Errorf("damaged env: %v", err)
	}
	// Not a file.
	must(t, os.Remove(sd.EnvFile()))
	must(t, os.MkdirAll(sd.EnvFile(), 0o700))
	if _, err := runEnvIn(f.Ctx(), dir, ""); err == nil || !strings.Contains(err.Error(), "reading env file") {
		t.Errorf("env is a folder: %v", err)
	}
	// Bad stack.
	if _, err := runEnvIn(f.Ctx(), dir+"/x", ""); err == nil {
		t.Error("env of nothing succeeded")
	}
	if err := Env(f.Ctx(), EnvOptions{Stack: Stack{Name: "", StateDir: dir}}); !cloud.IsUsage(err) {
		t.Errorf("no stack: %v", err)
	}
}

func TestUpWithS3EndpointOverride(t *testing.T) {
	t.Parallel()
	// Against an emulator clients need the endpoint too, and so does the server.
	f := newInstalledFake(t)
	f.S3Endpoint = "http://127.0.0.1:4566"
	dir := upStack(t, f, "demo")
	out, err := runEnv(t, dir, "dotenv")
	if err != nil || !strings.Contains(out, `MLFLOW_S3_ENDPOINT_URL="http://127.0.0.1:4566"`) {
		t.Errorf("%v\n%s", err, out)
	}
	f.Mu.Lock()
	ud := cloudfake.UserDataB64Text(t, f.Instances[0].UserData)
	f.Mu.Unlock()
	if !strings.Contains(ud, "http://127.0.0.1:4566") {
		t.Error("the server is not told the S3 endpoint")
	}
}
