package main

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/sshdtest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/internal/testhooks"
)

const testRegion = "eu-west-3"

// motoURL returns the moto server the integration tests run against
// (scripts/test.sh starts it). Without one the test fails in CI; elsewhere
// it is skipped and the run fails with a banner (testenv).
func motoURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("MLSTACK_TEST_MOTO_URL")
	if u == "" {
		testenv.Missing(t, "no moto server (MLSTACK_TEST_MOTO_URL is not set)")
	}
	return strings.TrimRight(u, "/")
}

// motoAPI posts to moto's control API (reset, reset-auth).
func motoAPI(t *testing.T, base, path, body string) {
	t.Helper()
	resp, err := http.Post(base+path, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("moto %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("moto %s: %s", path, resp.Status)
	}
}

// recorder is a reverse proxy in front of moto that records every request
// as "service action", independent of the SDK, so tests can prove that a
// command made no mutating call.
type recorder struct {
	mu     sync.Mutex
	reqs   []apiCall
	srv    *httptest.Server
	faults *faults // nil: pass everything through
	// aws makes moto's answers AWS-like (see awslike_test.go).
	aws *awsLike
}

type apiCall struct {
	Service, Action, Method, Path string
}

// Mutating reports whether a recorded call can change state.
func (c apiCall) Mutating() bool {
	if c.Service == "s3" {
		return c.Method != http.MethodGet && c.Method != http.MethodHead
	}
	for _, p := range []string{"Describe", "List", "Get"} {
		if strings.HasPrefix(c.Action, p) {
			return false
		}
	}
	return true
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{aws: newAWSLike()}
	proxy := r.aws.handler(httputil.NewSingleHostReverseProxy(u))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		call := apiCall{Method: req.Method, Path: req.URL.Path, Service: service(req)}
		if call.Service == "s3" {
			call.Action = s3Op(req)
		} else {
			vals, _ := url.ParseQuery(string(body))
			call.Action = vals.Get("Action")
			if call.Action == "" {
				call.Action = req.URL.Query().Get("Action")
			}
			if t := req.Header.Get("X-Amz-Target"); call.Action == "" && t != "" { // JSON protocol (SSM)
				call.Action = t[strings.LastIndex(t, ".")+1:]
			}
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, call)
		n := len(r.reqs)
		f := r.faults
		r.mu.Unlock()
		if f != nil && f.apply(w, req, call, n, proxy) {
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { r.aws.checkReadAll(t) })
	return r
}

// service reads the signing service from the SigV4 Authorization header:
// Credential=KEY/DATE/REGION/SERVICE/aws4_request.
func service(req *http.Request) string {
	auth := req.Header.Get("Authorization")
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return ""
	}
	parts := strings.Split(strings.SplitN(auth[i+len("Credential="):], ",", 2)[0], "/")
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

// s3Op names an S3 request "METHOD subresource", e.g. "PUT tagging",
// "DELETE" (object or bucket), "POST delete" (DeleteObjects).
func s3Op(req *http.Request) string {
	op := req.Method
	for k := range req.URL.Query() {
		if k != "x-id" && !strings.HasPrefix(k, "X-Amz") {
			op += " " + k
			break
		}
	}
	return op
}

func (r *recorder) setFaults(f *faults) {
	r.mu.Lock()
	r.faults = f
	r.mu.Unlock()
}

func (r *recorder) calls() []apiCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]apiCall(nil), r.reqs...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

func (r *recorder) mutating() []apiCall {
	var out []apiCall
	for _, c := range r.calls() {
		if c.Mutating() {
			out = append(out, c)
		}
	}
	return out
}

// env is one test's AWS world: a fresh moto behind a recorder, admin
// credentials in the environment, and a private state dir.
//
// A test with an env cannot run in parallel: newEnv resets the one moto
// every test shares (another test's stack would vanish mid-run) and
// points the process environment (t.Setenv, which Go refuses in a
// parallel test) at this test's recorder, where the in-process CLI finds
// its endpoint and keys.
type env struct {
	t        *testing.T
	moto     string
	rec      *recorder
	stateDir string
	ec2      *ec2.Client
	s3       *s3.Client
	iam      *iam.Client
	rds      *rds.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := motoURL(t)
	motoAPI(t, m, "/moto-api/reset", "")
	motoAPI(t, m, "/moto-api/reset-auth", "inf")
	e := &env{t: t, moto: m, rec: newRecorder(t, m), stateDir: t.TempDir()}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_EC2",
		"AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "MLSTACK_STACK", "MLSTACK_STATE_DIR", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_ENDPOINT_URL", e.rec.srv.URL)
	t.Setenv("MLSTACK_PYPI_URL", localPyPI())
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", testRegion)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	e.ec2, e.s3, e.iam = clients(t, m, "test", "test")
	e.rds = rdsClient(t, m)
	return e
}

// clients talks to moto directly (not through the recorder) with the given keys.
func clients(t *testing.T, endpoint, key, secret string) (*ec2.Client, *s3.Client, *iam.Client) {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, secret, "")),
		// moto closes idle keep-alive connections now and then; a leak check must not fail on that,
		// but nothing else is retried (errors are what some tests look for).
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.RateLimiter = ratelimit.None
				o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
			})
		}),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(endpoint)
	return ec2.NewFromConfig(cfg), s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), iam.NewFromConfig(cfg)
}

// rdsClient talks to moto's RDS directly, as clients does.
func rdsClient(t *testing.T, endpoint string) *rds.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")), config.WithLogger(logging.Nop{}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(endpoint)
	return rds.NewFromConfig(cfg)
}

// result of one in-process mlstack run.
type result struct {
	code           int
	stdout, stderr string
}

// mlstack runs the CLI in-process with no terminal on stdin, and the
// local stand-ins for the internet that offline gives the command.
func (e *env) mlstack(args ...string) result {
	e.t.Helper()
	return e.mlstackWith(testhooks.Hooks{}, args...)
}

// mlstackWith is mlstack with the test's own stand-ins: h's fields that
// are set replace offline's. They reach provision in the context, as no
// flag of the shipped command set can name them.
func (e *env) mlstackWith(h testhooks.Hooks, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	hooks := offline(args)
	hooks.HealthURL = cmp.Or(h.HealthURL, hooks.HealthURL)
	hooks.TrackingURI = cmp.Or(h.TrackingURI, hooks.TrackingURI)
	all := append([]string{"mlstack"}, args...)
	code := run(testhooks.With(context.Background(), hooks), all, strings.NewReader(""), &out, &errb)
	e.t.Logf("$ mlstack %s (health %q, server %q) → exit %d\n%s", strings.Join(args, " "), hooks.HealthURL, hooks.TrackingURI, code, errb.String())
	harvestSecrets(e.stateDir)
	for i, a := range args {
		if a == "--state-dir" && i+1 < len(args) {
			harvestSecrets(args[i+1])
		}
	}
	label := "mlstack " + strings.Join(args, " ")
	recordOutput(label+" (stderr)", errb.String())
	if len(args) == 0 || args[0] != "env" { // env's stdout is meant to carry them
		recordOutput(label+" (stdout)", out.String())
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs mlstack and fails e's test at once unless it exits 0; the result
// is there for further checks. It fails e.t, so it is not for a subtest
// that shares the parent's env.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	return e.okWith(testhooks.Hooks{}, args...)
}

// okWith is ok with the test's own stand-ins, as mlstackWith.
func (e *env) okWith(h testhooks.Hooks, args ...string) result {
	e.t.Helper()
	res := e.mlstackWith(h, args...)
	if res.code != 0 {
		e.t.Fatalf("mlstack %s: exit %d: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res
}

// stackFlags are the flags every test stack uses.
func (e *env) stackFlags(stack string) []string {
	return []string{"--stack", stack, "--state-dir", e.stateDir}
}

// onTerminal starts the built mlstack with args under script(1) (Debian's
// bsdutils), which gives it a terminal; the test writes to stdin and reads out.
func onTerminal(ctx context.Context, t *testing.T, term string, args ...string) (cmd *exec.Cmd, stdin io.WriteCloser, out *sshdtest.SyncBuffer) {
	t.Helper()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) (Debian's bsdutils) is needed to give mlstack a terminal")
	}
	// script runs line in a shell: quote every word.
	var words []string
	for _, a := range append([]string{binary(t)}, offlineArgs(args)...) {
		words = append(words, shellQuote(a))
	}
	line := strings.Join(words, " ")
	cmd = exec.CommandContext(ctx, scriptBin, "-q", "-e", "-c", line, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM="+term)
	if stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out = &sshdtest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	recordLive("terminal: mlstack "+strings.Join(args, " "), out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin, out
}

// answerOnTerminal runs the built mlstack with args on a terminal, answers
// reply to its [y/N] question once it is on the screen, and returns the
// exit code and everything the terminal showed.
func answerOnTerminal(t *testing.T, reply string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdin, out := onTerminal(ctx, t, "dumb", args...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "[y/N]") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_, err := stdin.Write([]byte(reply + "\n"))
	must(t, err)
	_ = cmd.Wait() // the caller checks the exit status (onTerminal records the output)
	return cmd.ProcessState.ExitCode(), out.String()
}

// Local stand-ins for what mlstack asks on the internet, so that no test
// does: moto's instances have real-looking public names and addresses.
var (
	localOnce         sync.Once
	localServerURL    string // answers 503 to everything: a server that is not ready
	localHealthyURL   string // answers 200 to everything: a tracking server that is up
	localPyPIURL      string // PyPI's JSON API for a few MLflow releases
	knownMLflowOnPyPI = []string{"3.5.0", "3.6.0", cloudinit.DefaultMLflowVersion}
)

func startLocalServers() {
	localOnce.Do(func() {
		// Never closed: they live as long as the test binary.
		localServerURL = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})).URL
		localHealthyURL = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).URL
		localPyPIURL = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, v := range knownMLflowOnPyPI {
				if r.URL.Path == "/pypi/mlflow/"+v+"/json" {
					_, _ = w.Write([]byte(`{"info":{"version":"` + v + `","yanked":false}}`))
					return
				}
			}
			http.NotFound(w, r)
		})).URL
	})
}

func localPyPI() string { startLocalServers(); return localPyPIURL }

// offline is where a command's calls to the stack's server go instead:
// status's health check and down's run count to the local server that is
// not ready, up's health wait to a healthy one.
func offline(args []string) testhooks.Hooks {
	startLocalServers()
	switch {
	case len(args) == 0:
	case (args[0] == "up" || args[0] == "upgrade" || args[0] == "restore") && !contains(args, "--no-wait"):
		return testhooks.Hooks{HealthURL: localHealthyURL + "/health"}
	case args[0] == "status":
		return testhooks.Hooks{HealthURL: localServerURL + "/health"}
	case args[0] == "down":
		return testhooks.Hooks{TrackingURI: localServerURL}
	}
	return testhooks.Hooks{}
}

// offlineArgs are args for the built binary (test build, testhooks.go)
// with offline's stand-ins as its hidden flags, unless args name their own.
func offlineArgs(args []string) []string {
	h, out := offline(args), slices.Clone(args)
	if h.HealthURL != "" && !contains(args, "--health-url") {
		out = append(out, "--health-url", h.HealthURL)
	}
	if h.TrackingURI != "" && !contains(args, "--tracking-uri") {
		out = append(out, "--tracking-uri", h.TrackingURI)
	}
	return out
}
