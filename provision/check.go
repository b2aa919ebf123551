package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/mlstack/mlstack/provision/envfile"
)

// DefaultCheckTimeout bounds the whole of `mlstack check`.
const DefaultCheckTimeout = 2 * time.Minute

// CheckFailedError says how many checks failed; the per-check lines are
// already on Config.Out.
type CheckFailedError struct{ Failed, Total int }

func (e *CheckFailedError) Error() string {
	return fmt.Sprintf("check: %d of %d checks failed", e.Failed, e.Total)
}

// checkTarget is what a client of the stack has: the env file's variables
// and the stack's bucket.
type checkTarget struct {
	uri, user, password  string
	accessKey, secretKey string
	region, s3Endpoint   string
	bucket               string
	// http is the client for the MLflow API; nil uses one with a timeout.
	http *http.Client
}

// secrets are the values no output may contain.
func (t checkTarget) secrets() []string { return []string{t.password, t.secretKey} }

// Check runs the user's smoke test of a stack from this machine, with
// exactly the variables of its env file: the MLflow REST API (health, auth,
// create an experiment and a run, log and read back a metric, delete both)
// and an S3 put/get/delete with the scoped keys. One ✓/✗ line per check goes
// to c.Out; the error is a *CheckFailedError when any check failed.
func Check(ctx context.Context, c Config) error {
	if err := ValidateStack(c.Stack); err != nil {
		return err
	}
	if c.StateDir == "" {
		return usagef("no state directory: pass --state-dir or set MLSTACK_STATE_DIR")
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultCheckTimeout
	}
	sd := newStateDir(c.StateDir, c.Stack)
	st, err := sd.load()
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("no local state for stack %s in %s: run `mlstack check` where the stack was created", c.Stack, sd.path)
	}
	b, err := os.ReadFile(sd.EnvFile())
	if err != nil {
		return fmt.Errorf("no env file for stack %s (%s): run `mlstack up --stack %s` first", c.Stack, sd.EnvFile(), c.Stack)
	}
	vars, err := envfile.Parse(b)
	if err != nil {
		return fmt.Errorf("env file %s is damaged (%v): run `mlstack up --stack %s` to rewrite it", sd.EnvFile(), err, c.Stack)
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v.Name] = v.Value
	}
	var missing []string
	for _, k := range []string{"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} {
		if env[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("env file %s lacks %s: run `mlstack up --stack %s` to rewrite it", sd.EnvFile(), strings.Join(missing, ", "), c.Stack)
	}
	t := checkTarget{
		uri:        strings.TrimRight(env["MLFLOW_TRACKING_URI"], "/"),
		user:       env["MLFLOW_TRACKING_USERNAME"],
		password:   env["MLFLOW_TRACKING_PASSWORD"],
		accessKey:  env["AWS_ACCESS_KEY_ID"],
		secretKey:  env["AWS_SECRET_ACCESS_KEY"],
		region:     env["AWS_DEFAULT_REGION"],
		s3Endpoint: env["MLFLOW_S3_ENDPOINT_URL"],
		bucket:     NamesFor(c.Stack, st.Account, st.Region).Bucket,
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	return runChecks(ctx, t, c.Out)
}

// checker prints one line per check and counts failures.
type checker struct {
	out           io.Writer
	secrets       []string
	failed, total int
	skipping      string // set after a failure that makes later steps pointless
}

// mask replaces every secret in s.
func (c *checker) mask(s string) string {
	for _, sec := range c.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// run runs one check unless an earlier failure made it pointless.
func (c *checker) run(name string, fn func() (string, error)) bool {
	c.total++
	if c.skipping != "" {
		c.failed++
		fmt.Fprintf(c.out, "✗ %s: not run (%s)\n", name, c.skipping)
		return false
	}
	detail, err := fn()
	if err != nil {
		c.failed++
		fmt.Fprintf(c.out, "✗ %s: %s\n", name, c.mask(err.Error()))
		return false
	}
	if detail != "" {
		fmt.Fprintf(c.out, "✓ %s: %s\n", name, c.mask(detail))
	} else {
		fmt.Fprintf(c.out, "✓ %s\n", name)
	}
	return true
}

func runChecks(ctx context.Context, t checkTarget, out io.Writer) error {
	if t.http == nil {
		t.http = &http.Client{Timeout: 20 * time.Second}
	}
	ck := &checker{out: out, secrets: t.secrets()}
	api := &mlflowAPI{t: t}

	fmt.Fprintf(out, "checking %s as %s\n", t.uri, t.user)
	if !ck.run("server answers /health", func() (string, error) { return "", api.health(ctx) }) {
		ck.skipping = "the server does not answer"
	}
	ck.run("API refuses requests without credentials", func() (string, error) { return "", api.refusesAnonymous(ctx) })

	var expID, runID, artifactLoc string
	name := "mlstack-check-" + randomHex(6)
	ck.run("create experiment", func() (s string, err error) {
		expID, artifactLoc, err = api.createExperiment(ctx, name)
		return name + " (id " + expID + ")", err
	})
	if expID == "" && ck.skipping == "" {
		ck.skipping = "no experiment"
	}
	ck.run("experiment artifacts go to the stack bucket", func() (string, error) {
		if !strings.HasPrefix(artifactLoc, "s3://"+t.bucket+"/") {
			return "", fmt.Errorf("artifact location is %q, want s3://%s/…", artifactLoc, t.bucket)
		}
		return artifactLoc, nil
	})
	expSkip := ck.skipping
	ck.run("create run", func() (s string, err error) {
		runID, err = api.createRun(ctx, expID)
		return "id " + runID, err
	})
	if runID == "" && ck.skipping == "" {
		ck.skipping = "no run"
	}
	ck.run("log and read back a metric", func() (string, error) { return "", api.logMetric(ctx, runID) })
	// Clean up whatever was created, even after a failure in between.
	ck.skipping = expSkip
	if runID != "" {
		ck.run("delete run", func() (string, error) { return "", api.post(ctx, "runs/delete", map[string]any{"run_id": runID}, nil) })
	}
	if expID != "" {
		ck.run("delete experiment", func() (string, error) {
			return "", api.post(ctx, "experiments/delete", map[string]any{"experiment_id": expID}, nil)
		})
	}

	ck.skipping = ""
	s3c := t.s3Client()
	key := "mlstack-check/" + randomHex(8) + ".txt"
	body := []byte("mlstack check " + time.Now().UTC().Format(time.RFC3339) + "\n")
	put := ck.run("S3 put with the scoped keys", func() (string, error) {
		_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &t.bucket, Key: &key, Body: bytes.NewReader(body)})
		return "s3://" + t.bucket + "/" + key, s3Error(err)
	})
	if !put {
		ck.skipping = "put failed"
	}
	ck.run("S3 get returns what was put", func() (string, error) {
		o, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &t.bucket, Key: &key})
		if err != nil {
			return "", s3Error(err)
		}
		defer o.Body.Close()
		got, err := io.ReadAll(io.LimitReader(o.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if !bytes.Equal(got, body) {
			return "", fmt.Errorf("got %d bytes that differ from the %d put", len(got), len(body))
		}
		return "", nil
	})
	ck.run("S3 delete", func() (string, error) {
		_, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &t.bucket, Key: &key})
		return "", s3Error(err)
	})

	if ck.failed > 0 {
		fmt.Fprintf(out, "%d of %d checks failed\n", ck.failed, ck.total)
		return &CheckFailedError{Failed: ck.failed, Total: ck.total}
	}
	fmt.Fprintf(out, "all %d checks passed\n", ck.total)
	return nil
}

// s3Client talks to the bucket with the scoped keys only: no shared config,
// no ambient credentials. Local endpoints need path-style addressing.
func (t checkTarget) s3Client() *s3.Client {
	return s3.New(s3.Options{
		Region:      t.region,
		Credentials: credentials.NewStaticCredentialsProvider(t.accessKey, t.secretKey, ""),
		BaseEndpoint: func() *string {
			if t.s3Endpoint == "" {
				return nil
			}
			return aws.String(t.s3Endpoint)
		}(),
		UsePathStyle: t.s3Endpoint != "",
		HTTPClient:   &http.Client{Timeout: 20 * time.Second},
	})
}

// s3Error shortens an SDK error to the service's code and message, or the
// transport's cause.
func s3Error(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mlflowAPI is the small part of MLflow's REST API 2.0 the check uses.
type mlflowAPI struct{ t checkTarget }

// httpError is a non-2xx answer; its text holds the status and MLflow's
// error code or a short, single-line excerpt of the body.
type httpError struct {
	status int
	text   string
}

func (e *httpError) Error() string { return e.text }

func (a *mlflowAPI) do(ctx context.Context, method, path string, body any, auth bool, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.t.uri+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(a.t.user, a.t.password)
	}
	resp, err := a.t.http.Do(req)
	if err != nil {
		// url.Error carries method and URL, which hold no secrets (basic
		// auth travels in a header); strip it to the cause for one short line.
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
		return &httpError{status: resp.StatusCode, text: fmt.Sprintf("%s %s: %s%s", method, path, resp.Status, errorDetail(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer is not the expected JSON: %v", method, path, err)
		}
	}
	return nil
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

func (a *mlflowAPI) post(ctx context.Context, endpoint string, body, out any) error {
	return a.do(ctx, http.MethodPost, "/api/2.0/mlflow/"+endpoint, body, true, out)
}

func (a *mlflowAPI) health(ctx context.Context) error {
	return a.do(ctx, http.MethodGet, "/health", nil, false, nil)
}

func (a *mlflowAPI) refusesAnonymous(ctx context.Context) error {
	err := a.do(ctx, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default", nil, false, nil)
	var he *httpError
	switch {
	case err == nil:
		return errors.New("an unauthenticated request succeeded: basic auth is not enforced")
	case errors.As(err, &he) && he.status == http.StatusUnauthorized:
		return nil
	case errors.As(err, &he):
		return fmt.Errorf("want 401 Unauthorized, got %s", he.text)
	default:
		return err
	}
}

func (a *mlflowAPI) createExperiment(ctx context.Context, name string) (id, artifactLocation string, err error) {
	var created struct {
		ID string `json:"experiment_id"`
	}
	if err := a.post(ctx, "experiments/create", map[string]any{"name": name}, &created); err != nil {
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
	if err := a.do(ctx, http.MethodGet, "/api/2.0/mlflow/experiments/get?experiment_id="+url.QueryEscape(created.ID), nil, true, &got); err != nil {
		return created.ID, "", err
	}
	return created.ID, got.Experiment.ArtifactLocation, nil
}

func (a *mlflowAPI) createRun(ctx context.Context, expID string) (string, error) {
	var created struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	err := a.post(ctx, "runs/create", map[string]any{
		"experiment_id": expID, "start_time": time.Now().UnixMilli(), "run_name": "mlstack-check",
	}, &created)
	if err != nil {
		return "", err
	}
	if created.Run.Info.RunID == "" {
		return "", errors.New("runs/create answered without a run_id")
	}
	return created.Run.Info.RunID, nil
}

func (a *mlflowAPI) logMetric(ctx context.Context, runID string) error {
	const key, value = "mlstack_check", 0.5
	if err := a.post(ctx, "runs/log-metric", map[string]any{
		"run_id": runID, "key": key, "value": value, "timestamp": time.Now().UnixMilli(), "step": 0,
	}, nil); err != nil {
		return err
	}
	var hist struct {
		Metrics []struct {
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	q := url.Values{"run_id": {runID}, "metric_key": {key}}
	if err := a.do(ctx, http.MethodGet, "/api/2.0/mlflow/metrics/get-history?"+q.Encode(), nil, true, &hist); err != nil {
		return err
	}
	if len(hist.Metrics) != 1 || hist.Metrics[0].Value != value {
		return fmt.Errorf("metric history is %+v, want one value %v", hist.Metrics, value)
	}
	return nil
}
