package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/local"
)

// pwServer is the part of an MLflow tracking server that a password
// rotation talks to, with basic auth.
type pwServer struct {
	mu       sync.Mutex
	user     string
	password string
	changes  int
	getFails bool // users/get answers 500
}

func (s *pwServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, p, ok := r.BasicAuth()
	if !ok || u != s.user || p != s.password {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error_code":"UNAUTHENTICATED","message":"You are not authenticated."}`))
		return
	}
	switch {
	case r.Method == http.MethodPatch && r.URL.Path == "/api/2.0/mlflow/users/update-password":
		var body struct {
			Username, Password string
			Current            string `json:"current_password"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Username != s.user || body.Current != s.password || body.Password == "" {
			http.Error(w, `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad update"}`, http.StatusBadRequest)
			return
		}
		s.password = body.Password
		s.changes++
		w.Write([]byte(`{}`))
	case r.Method == http.MethodGet && r.URL.Path == "/api/2.0/mlflow/users/get" && r.URL.Query().Get("username") == s.user:
		if s.getFails {
			http.Error(w, "<html>internal error</html>", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{"user":{"username":"` + s.user + `","is_admin":true}}`))
	default:
		http.NotFound(w, r)
	}
}

func (s *pwServer) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.password
}

// startPwServer serves the MLflow user API with user admin and password.
func startPwServer(t *testing.T, password string) (*pwServer, string) {
	s := &pwServer{user: "admin", password: password}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func rotateOpts(dir, stack, uri string) (RotateOptions, *bytes.Buffer) {
	log := &bytes.Buffer{}
	return RotateOptions{Stack: Stack{Name: stack, StateDir: dir}, Streams: Streams{Log: log}, hooks: testhooks.Hooks{TrackingURI: uri}}, log
}

func TestRotateCreds(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	old := savedSecrets(t, dir, "demo")
	ml, uri := startPwServer(t, old.MLflowPassword)

	o, log := rotateOpts(dir, "demo", uri)
	if err := RotateCreds(f.Ctx(), o); err != nil {
		t.Fatalf("rotate: %v\n%s", err, log)
	}
	now := savedSecrets(t, dir, "demo")
	if now.AccessKeyID == old.AccessKeyID || now.SecretAccessKey == old.SecretAccessKey {
		t.Error("access key not rotated")
	}
	if keys := f.KeyIDs("mlstack-demo"); !slices.Equal(keys, []string{now.AccessKeyID}) {
		t.Errorf("user keys %v, want only the new %s", keys, now.AccessKeyID)
	}
	if now.MLflowPassword == old.MLflowPassword || now.MLflowPassword != ml.current() || ml.changes != 1 || len(now.MLflowPassword) != 32 {
		t.Errorf("MLflow password: saved %q, server %q, %d change(s)", now.MLflowPassword, ml.current(), ml.changes)
	}
	if now.FlaskSecretKey != old.FlaskSecretKey || now.SSHPublicKey != old.SSHPublicKey {
		t.Error("rotation changed other secrets")
	}
	// The new key is proven with its own signature before the old one goes.
	calls := f.Calls()
	create, probe, del := slices.Index(calls, "IAM.CreateAccessKey"), slices.Index(calls, "S3.ListObjectsV2"), slices.Index(calls, "IAM.DeleteAccessKey")
	if create < 0 || probe < create || del < probe {
		t.Errorf("calls %v: want CreateAccessKey, then the probe, then DeleteAccessKey", calls)
	}
	// SSM gets the new password, for the next instance that boots.
	if m := f.Mutating(); !slices.Equal(m, []string{"IAM.CreateAccessKey", "IAM.DeleteAccessKey", "SSM.PutParameter", "SSM.AddTagsToResource"}) {
		t.Errorf("mutating calls %v", m)
	}
	if p := f.Params["/mlstack/demo/admin-password"]; p == nil || p.Value != now.MLflowPassword || p.Typ != "SecureString" || p.Tags[cloud.TagStack] != "demo" {
		t.Errorf("SSM admin password %+v", p)
	}
	env := readFile(t, local.StackDir(dir, "demo").EnvFile())
	for _, want := range []string{"MLFLOW_TRACKING_URI='" + uri + "'", "AWS_ACCESS_KEY_ID='" + now.AccessKeyID + "'",
		"AWS_SECRET_ACCESS_KEY='" + now.SecretAccessKey + "'", "MLFLOW_TRACKING_PASSWORD='" + now.Users[now.EnvUser] + "'"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if !strings.Contains(log.String(), "credentials of stack demo rotated") {
		t.Errorf("progress:\n%s", log)
	}
	for _, s := range []string{now.SecretAccessKey, now.MLflowPassword, old.MLflowPassword} {
		if strings.Contains(log.String(), s) {
			t.Error("a secret reached the progress output")
		}
	}
}

func TestRotateCredsOnAFreshMachine(t *testing.T) {
	t.Parallel()
	// Another machine with admin credentials and no local state: the
	// current MLflow password comes from SSM (the user-data has none).
	f := newInstalledFake(t)
	first := upStack(t, f, "demo")
	orig := savedSecrets(t, first, "demo")
	ml, uri := startPwServer(t, orig.MLflowPassword)

	dir := t.TempDir()
	o, log := rotateOpts(dir, "demo", uri)
	if err := RotateCreds(f.Ctx(), o); err != nil {
		t.Fatalf("rotate: %v\n%s", err, log)
	}
	if f.Count("SSM.GetParameters") == 0 || f.Count("EC2.DescribeInstanceAttribute") != 0 {
		t.Errorf("password not read from SSM: %v", f.Calls())
	}
	if p := f.Params["/mlstack/demo/admin-password"]; p == nil || p.Value != ml.current() {
		t.Error("SSM does not hold the new password")
	}
	sec := savedSecrets(t, dir, "demo")
	if sec == nil || sec.Account != cloudfake.FakeAccount || sec.Region != cloudfake.FakeRegion || sec.MLflowUser != "admin" ||
		sec.MLflowPassword != ml.current() || sec.MLflowPassword == orig.MLflowPassword {
		t.Fatalf("state here %+v, server password %q", sec, ml.current())
	}
	if keys := f.KeyIDs("mlstack-demo"); !slices.Equal(keys, []string{sec.AccessKeyID}) {
		t.Errorf("user keys %v", keys)
	}
	if _, err := os.Stat(local.StackDir(dir, "demo").EnvFile()); err != nil {
		t.Errorf("env file: %v", err)
	}
}

func TestRotateCredsUsesTheInstanceAddress(t *testing.T) {
	t.Parallel()
	// Without an override the tracking URI is the instance's; here nothing
	// answers there, so the password stays while the key rotates.
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.Mu.Lock()
	f.Instances[0].Inst.PublicDnsName = nil
	ip := "127.0.0.1"
	f.Instances[0].Inst.PublicIpAddress = &ip
	f.Mu.Unlock()
	old := savedSecrets(t, dir, "demo")
	o, _ := rotateOpts(dir, "demo", "")
	ctx, cancel := context.WithTimeout(f.Ctx(), 10*time.Second)
	defer cancel()
	err := RotateCreds(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "access key rotated; MLflow password not rotated") {
		t.Fatalf("rotate = %v", err)
	}
	now := savedSecrets(t, dir, "demo")
	if now.AccessKeyID == old.AccessKeyID || now.MLflowPassword != old.MLflowPassword {
		t.Errorf("key %s -> %s, password changed %v", old.AccessKeyID, now.AccessKeyID, now.MLflowPassword != old.MLflowPassword)
	}
	env := readFile(t, local.StackDir(dir, "demo").EnvFile())
	if !strings.Contains(string(env), "https://127.0.0.1:5000") || !strings.Contains(string(env), now.AccessKeyID) {
		t.Errorf("env file:\n%s", env)
	}
}

func TestRotateCredsSkipMLflow(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	old := savedSecrets(t, dir, "demo")
	ml, uri := startPwServer(t, old.MLflowPassword)
	o, log := rotateOpts(dir, "demo", uri)
	o.SkipMLflow = true
	if err := RotateCreds(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	now := savedSecrets(t, dir, "demo")
	if ml.changes != 0 || now.MLflowPassword != old.MLflowPassword || now.AccessKeyID == old.AccessKeyID {
		t.Errorf("changes %d, state %+v", ml.changes, now)
	}
	if !strings.Contains(log.String(), "MLflow password not rotated (--skip-mlflow)") {
		t.Errorf("progress:\n%s", log)
	}
}

func TestRotateCredsRefusals(t *testing.T) {
	t.Parallel()
	t.Run("two keys", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		f.Mu.Lock()
		f.AddKey(f.Users["mlstack-demo"], time.Now())
		f.Mu.Unlock()
		f.ResetCalls()
		o, _ := rotateOpts(dir, "demo", "http://127.0.0.1:1")
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "already has 2 access keys") {
			t.Fatalf("rotate = %v", err)
		}
		if len(f.Mutating()) != 0 {
			t.Errorf("mutating calls %v", f.Mutating())
		}
	})
	t.Run("no user", func(t *testing.T) {
		f := newInstalledFake(t)
		o, _ := rotateOpts(t.TempDir(), "demo", "")
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "has no IAM user mlstack-demo: `mlstack up --stack demo --state-dir "+o.StateDir+"` creates it") {
			t.Fatalf("rotate = %v", err)
		}
		if len(f.Mutating()) != 0 {
			t.Errorf("mutating calls %v", f.Mutating())
		}
	})
	t.Run("foreign user", func(t *testing.T) {
		f := newInstalledFake(t)
		f.AddUser("mlstack-demo", nil)
		o, _ := rotateOpts(t.TempDir(), "demo", "")
		if err := RotateCreds(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "is not tagged") {
			t.Fatalf("rotate = %v", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		f := newInstalledFake(t)
		o, _ := rotateOpts(t.TempDir(), "Demo", "")
		if err := RotateCreds(f.Ctx(), o); !cloud.IsUsage(err) {
			t.Fatalf("rotate = %v", err)
		}
		o, _ = rotateOpts(t.TempDir(), "demo", "")
		o.Region = "nowhere"
		if err := RotateCreds(f.Ctx(), o); !cloud.IsUsage(err) {
			t.Fatalf("rotate = %v", err)
		}
		if f.Connects != 0 {
			t.Error("bad input reached AWS")
		}
	})
}

func TestRotateCredsFailures(t *testing.T) {
	t.Parallel()
	t.Run("CreateAccessKey", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		old := savedSecrets(t, dir, "demo")
		f.FailNext("CreateAccessKey", cloudfake.AwsErr("LimitExceeded"), 1)
		o, _ := rotateOpts(dir, "demo", "http://127.0.0.1:1")
		if err := RotateCreds(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "creating access key for mlstack-demo") {
			t.Fatalf("rotate = %v", err)
		}
		if !reflect.DeepEqual(*savedSecrets(t, dir, "demo"), *old) {
			t.Error("state changed")
		}
	})

	t.Run("key cannot be saved", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		old := savedSecrets(t, dir, "demo")
		sd := local.StackDir(dir, "demo").Path()
		// The state folder turns into a file while AWS makes the key.
		f.FailIf("CreateAccessKey", nil, 1, false, func(any) bool {
			if err := os.RemoveAll(sd); err != nil {
				t.Errorf("setup: %v", err)
			}
			if err := os.WriteFile(sd, nil, 0o600); err != nil {
				t.Errorf("setup: %v", err)
			}
			return false
		})
		o, _ := rotateOpts(dir, "demo", "http://127.0.0.1:1")
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "saving the new access key") || !strings.Contains(err.Error(), "removing it again: <nil>") {
			t.Fatalf("rotate = %v", err)
		}
		if keys := f.KeyIDs("mlstack-demo"); !slices.Equal(keys, []string{old.AccessKeyID}) {
			t.Errorf("user keys %v: the unsaved key must go, the old one stay", keys)
		}
	})

	t.Run("new key not accepted", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		old := savedSecrets(t, dir, "demo")
		f.FailNext("ListObjectsV2", cloudfake.AwsErr("NoSuchBucket"), 1)
		o, _ := rotateOpts(dir, "demo", "http://127.0.0.1:1")
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "does not work yet") || !strings.Contains(err.Error(), "the old key was kept") {
			t.Fatalf("rotate = %v", err)
		}
		now := savedSecrets(t, dir, "demo")
		if keys := f.KeyIDs("mlstack-demo"); len(keys) != 2 || !slices.Contains(keys, old.AccessKeyID) || !slices.Contains(keys, now.AccessKeyID) {
			t.Errorf("user keys %v, saved %s", keys, now.AccessKeyID)
		}
	})

	t.Run("new key accepted after a while", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		_, uri := startPwServer(t, savedSecrets(t, dir, "demo").MLflowPassword)
		f.FailNext("ListObjectsV2", cloudfake.AwsErr("InvalidAccessKeyId"), 3)
		o, _ := rotateOpts(dir, "demo", uri)
		if err := RotateCreds(f.Ctx(), o); err != nil {
			t.Fatal(err)
		}
		if n := f.Count("S3.ListObjectsV2"); n != 4 {
			t.Errorf("probe called %d times", n)
		}
	})

	t.Run("old key cannot be deleted", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		f.FailNext("DeleteAccessKey", cloudfake.AwsErr("AccessDenied"), 1)
		o, _ := rotateOpts(dir, "demo", "http://127.0.0.1:1")
		if err := RotateCreds(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "deleting old access key") {
			t.Fatalf("rotate = %v", err)
		}
	})

	t.Run("password change refused", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		old := savedSecrets(t, dir, "demo")
		ml, uri := startPwServer(t, "someone-changed-it")
		o, _ := rotateOpts(dir, "demo", uri)
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "access key rotated; MLflow password not rotated") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("rotate = %v", err)
		}
		now := savedSecrets(t, dir, "demo")
		if now.MLflowPassword != old.MLflowPassword || ml.changes != 0 || now.AccessKeyID == old.AccessKeyID {
			t.Errorf("state %+v", now)
		}
		// The env file carries the new key even so.
		env := readFile(t, local.StackDir(dir, "demo").EnvFile())
		if !strings.Contains(string(env), now.AccessKeyID) {
			t.Errorf("env:\n%s", env)
		}
	})

	t.Run("new password does not work", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		ml, uri := startPwServer(t, savedSecrets(t, dir, "demo").MLflowPassword)
		ml.getFails = true
		o, _ := rotateOpts(dir, "demo", uri)
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "the new MLflow password was set but does not work") || !strings.Contains(err.Error(), "500") {
			t.Fatalf("rotate = %v", err)
		}
		if got := savedSecrets(t, dir, "demo").MLflowPassword; got != ml.current() {
			t.Error("the password the server switched to was not saved")
		}
	})

	t.Run("no running instance", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		f.SetInstanceState(f.LiveInstances()[0], ec2types.InstanceStateNameTerminated)
		envBefore := readFile(t, local.StackDir(dir, "demo").EnvFile())
		o, _ := rotateOpts(dir, "demo", "")
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "no running instance: MLflow password not rotated") {
			t.Fatalf("rotate = %v", err)
		}
		// The old key is gone: the env file carries the new one, and the
		// server's address it had (the instance may come back).
		envAfter, _ := os.ReadFile(local.StackDir(dir, "demo").EnvFile())
		newKey := savedSecrets(t, dir, "demo").AccessKeyID
		uriLine := regexp.MustCompile(`(?m)^export MLFLOW_TRACKING_URI=.*$`)
		if !bytes.Contains(envAfter, []byte(newKey)) || string(uriLine.Find(envAfter)) != string(uriLine.Find(envBefore)) {
			t.Errorf("env file after rotation:\n%s", envAfter)
		}
		// Without an env file either, the new key waits in the state for up.
		if err := os.Remove(local.StackDir(dir, "demo").EnvFile()); err != nil {
			t.Fatal(err)
		}
		o, log := rotateOpts(dir, "demo", "")
		o.SkipMLflow = true
		if err := RotateCreds(f.Ctx(), o); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "`mlstack up --stack demo --state-dir "+dir+" --allow-cidr 198.51.100.7/32` launches one and writes the env file") {
			t.Errorf("progress:\n%s", log)
		}
		// A machine without the stack's SSH key cannot launch one: up would
		// refuse the key pair. It is told to rotate again once a server runs.
		fresh := t.TempDir()
		o, log = rotateOpts(fresh, "demo", "")
		o.SkipMLflow = true
		if err := RotateCreds(f.Ctx(), o); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log.String(), "mlstack up") ||
			!strings.Contains(log.String(), "`mlstack creds rotate --stack demo --state-dir "+fresh+" --skip-mlflow` here writes the env file") {
			t.Errorf("progress on a fresh machine:\n%s", log)
		}
	})

	t.Run("SSM unreadable", func(t *testing.T) {
		f := newInstalledFake(t)
		upStack(t, f, "demo")
		f.FailNext("GetParameters", cloudfake.AwsErr("AccessDeniedException"), 1)
		o, _ := rotateOpts(t.TempDir(), "demo", "http://127.0.0.1:1")
		if err := RotateCreds(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "reading SSM parameters /mlstack/demo/admin-password") {
			t.Fatalf("rotate = %v", err)
		}
	})

	t.Run("SSM refuses the new password", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		ml, uri := startPwServer(t, savedSecrets(t, dir, "demo").MLflowPassword)
		f.FailNext("PutParameter", cloudfake.AwsErr("ThrottlingException"), 1)
		o, _ := rotateOpts(dir, "demo", uri)
		err := RotateCreds(f.Ctx(), o)
		if err == nil || !strings.Contains(err.Error(), "works on the server but SSM still holds the old one") {
			t.Fatalf("rotate = %v", err)
		}
		if savedSecrets(t, dir, "demo").MLflowPassword != ml.current() {
			t.Error("the password the server took is not saved here")
		}
	})
}
