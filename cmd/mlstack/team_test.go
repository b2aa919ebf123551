package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/proctest"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/internal/testhooks"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func (e *env) ls(args ...string) []stackDoc {
	e.t.Helper()
	res := e.ok(append([]string{"ls", "--output", "json"}, args...)...)
	return decodeStacks(e.t, res.stdout)
}

func stacksOf(entries []stackDoc) string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Stack)
	}
	return strings.Join(sorted(names), ",")
}

// TestTTLListAndSweep: stacks with short and long TTLs and without; ls
// shows them with their fields; --dry-run changes nothing; --expired
// removes exactly the expired ones; --all --older-than respects age.
func TestTTLListAndSweep(t *testing.T) {
	e := newEnv(t)
	up := func(stack string, extra ...string) {
		t.Helper()
		args := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, append(e.stackFlags(stack), extra...)...)
		e.ok(args...)
	}
	up("short1", "--ttl", "2s")
	up("short2", "--ttl", "2s")
	up("long", "--ttl", "4h")
	up("forever")

	entries := e.ls()
	if got := stacksOf(entries); got != "forever,long,short1,short2" {
		t.Fatalf("ls: %s", got)
	}
	for _, en := range entries {
		if en.Region != testRegion || en.CreatedAt == nil || en.Instance == nil || en.Instance.State != "running" || en.TrackingURI == nil ||
			!strings.HasPrefix(*en.TrackingURI, "https://") || len(en.Resources) < 6 {
			t.Errorf("ls entry %+v lacks fields", en)
		}
		switch en.Stack {
		case "forever":
			if en.ExpiresAt != nil {
				t.Errorf("forever has an expiry %s", en.ExpiresAt)
			}
		case "long":
			if d := time.Until(*en.ExpiresAt); d < 3*time.Hour || d > 5*time.Hour {
				t.Errorf("long expires in %s, want about 4h", d)
			}
		}
	}
	// Foreign look-alikes never appear: an untagged user on the mlstack path.
	_, err := e.iam.CreateUser(context.Background(), &iam.CreateUserInput{UserName: aws.String("mlstack-stranger"), Path: aws.String("/mlstack/")})
	must(t, err)
	if got := stacksOf(e.ls()); got != "forever,long,short1,short2" {
		t.Fatalf("ls with an untagged user: %s", got)
	}
	table := e.mlstack("ls")
	if table.code != 0 || !strings.Contains(table.stdout, "STACK") || !strings.Contains(table.stdout, "short1") {
		t.Errorf("ls table:\n%s", table.stdout)
	}

	time.Sleep(3 * time.Second) // the short TTLs pass
	before := e.everything()
	e.rec.reset()
	dry := e.mlstack("down", "--expired", "--dry-run", "--state-dir", e.stateDir)
	if dry.code != 0 || !strings.Contains(dry.stdout, "would delete stack short1") || !strings.Contains(dry.stdout, "would delete stack short2") ||
		strings.Contains(dry.stdout, "long") || strings.Contains(dry.stdout, "forever") {
		t.Fatalf("dry-run sweep: exit %d\n%s", dry.code, dry.stdout)
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("dry-run sweep made mutating calls: %+v", m)
	}
	if after := e.everything(); strings.Join(before, "|") != strings.Join(after, "|") {
		t.Error("dry-run sweep changed resources")
	}
	if res := e.mlstack("down", "--expired", "--state-dir", e.stateDir); res.code != 2 {
		t.Errorf("sweep without --yes and no terminal: exit %d", res.code)
	}

	res := e.mlstack("down", "--expired", "--yes", "--state-dir", e.stateDir)
	if res.code != 0 || !strings.Contains(res.stdout, "deleted  short1") || !strings.Contains(res.stdout, "deleted  short2") {
		t.Fatalf("sweep: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if got := stacksOf(e.ls()); got != "forever,long" {
		t.Fatalf("after the sweep: %s", got)
	}
	// --older-than: nothing is an hour old yet.
	e.ok("down", "--all", "--older-than", "1h", "--yes", "--state-dir", e.stateDir)
	if got := stacksOf(e.ls()); got != "forever,long" {
		t.Fatalf("--older-than 1h removed young stacks: %s", got)
	}
	e.ok("down", "--all", "--older-than", "1s", "--yes", "--state-dir", e.stateDir)
	_, err = e.iam.DeleteUser(context.Background(), &iam.DeleteUserInput{UserName: aws.String("mlstack-stranger")})
	must(t, err)
	e.assertNothingLeft()
}

// TestTTLExtend: up --ttl on a live stack moves the expiry of every resource.
func TestTTLExtend(t *testing.T) {
	e := newEnv(t)
	flags := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("ext")...)
	e.ok(append(flags, "--ttl", "1h")...)
	res := e.ok(append(flags, "--ttl", "2d", "--output", "json")...)
	rep := decodeStack(t, res.stdout)
	if rep.Stack != "ext" || !hasResource(rep, "s3_bucket", "mlstack-ext-123456789012-eu-west-3-an") || rep.ExpiresAt == nil ||
		rep.TrackingURI == nil || rep.EnvFile == nil {
		t.Errorf("up --output json: %+v", rep)
	}
	// The expiry is the stack's, not only this run's --ttl.
	again := decodeStack(t, e.ok(append(flags, "--output", "json")...).stdout)
	if again.ExpiresAt == nil || !again.ExpiresAt.Equal(*rep.ExpiresAt) {
		t.Errorf("up --output json without --ttl: expires_at %v, want %v", again.ExpiresAt, rep.ExpiresAt)
	}
	ls := e.ls()
	if len(ls) != 1 || ls[0].ExpiresAt == nil || time.Until(*ls[0].ExpiresAt) < 47*time.Hour {
		t.Fatalf("expiry not moved on every resource: %+v", ls)
	}
	st := e.mlstack(append([]string{"status", "--output", "json"}, e.stackFlags("ext")...)...)
	sr := decodeStack(t, st.stdout)
	if sr.Stack != "ext" || len(sr.Resources) != 10 || sr.TrackingURI == nil || !sr.ExpiresAt.Equal(*rep.ExpiresAt) {
		t.Errorf("status --output json: %+v", sr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("ext")...)...)
	e.assertNothingLeft()
}

// parseGitHubEnv reads $GITHUB_ENV syntax as the Actions runner does:
// NAME=value lines, and NAME<<DELIM ... DELIM blocks for any value.
func parseGitHubEnv(t *testing.T, data string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		eq, heredoc := strings.Index(line, "="), strings.Index(line, "<<")
		if eq >= 0 && (heredoc < 0 || eq < heredoc) {
			out[line[:eq]] = line[eq+1:]
			continue
		}
		if heredoc < 0 {
			t.Fatalf("invalid $GITHUB_ENV line %q", line)
		}
		name, delim := line[:heredoc], line[heredoc+2:]
		var val []string
		closed := false
		for sc.Scan() {
			if sc.Text() == delim {
				closed = true
				break
			}
			val = append(val, sc.Text())
		}
		if !closed {
			t.Fatalf("unterminated value of %s", name)
		}
		out[name] = strings.Join(val, "\n")
	}
	return out
}

// TestEnvFormats: every format carries the same values; github masks the
// secrets and writes to $GITHUB_ENV; a machine without secrets is told
// what is missing and how to get it.
func TestEnvFormats(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("fmt")...)...)
	shell := e.mlstack(append([]string{"env"}, e.stackFlags("fmt")...)...)
	want := sourceEnv(t, shell.stdout)

	js := e.mlstack(append([]string{"env", "--format", "json"}, e.stackFlags("fmt")...)...)
	var got map[string]string
	if err := json.Unmarshal([]byte(js.stdout), &got); err != nil {
		t.Fatalf("env --format json: %v", err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("json %s differs", k)
		}
	}

	dot := e.mlstack(append([]string{"env", "--format", "dotenv"}, e.stackFlags("fmt")...)...)
	for _, line := range strings.Split(strings.TrimSpace(dot.stdout), "\n") {
		name, val, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(val, `"`) || !strings.HasSuffix(val, `"`) || want[name] != strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\$`, `$`, `\n`, "\n").Replace(val[1:len(val)-1]) {
			t.Errorf("dotenv line for %s does not carry the value", name)
		}
	}

	ghFile := filepath.Join(t.TempDir(), "github_env")
	t.Setenv("GITHUB_ENV", ghFile)
	gh := e.ok(append([]string{"env", "--format", "github"}, e.stackFlags("fmt")...)...)
	for _, secret := range []string{want["AWS_SECRET_ACCESS_KEY"], want["MLFLOW_TRACKING_PASSWORD"]} {
		if !strings.Contains(gh.stdout, "::add-mask::"+secret+"\n") {
			t.Error("a secret is not masked")
		}
	}
	if strings.Contains(gh.stdout, "<<") {
		t.Error("with $GITHUB_ENV set, the variables must go to that file, not stdout")
	}
	data, err := os.ReadFile(ghFile)
	must(t, err)
	parsed := parseGitHubEnv(t, string(data))
	for k, v := range want {
		if parsed[k] != v {
			t.Errorf("$GITHUB_ENV %s differs", k)
		}
	}
	t.Setenv("GITHUB_ENV", "")
	os.Unsetenv("GITHUB_ENV")
	// The parser handles multi-line values the way the runner does.
	if p := parseGitHubEnv(t, "A=1\nB<<EOF\nx\ny=z\nEOF\n"); p["A"] != "1" || p["B"] != "x\ny=z" {
		t.Errorf("parser: %v", p)
	}

	if res := e.mlstack(append([]string{"env", "--format", "xml"}, e.stackFlags("fmt")...)...); res.code != 2 {
		t.Errorf("unknown format: exit %d", res.code)
	}
	fresh := e.mlstack("env", "--stack", "fmt", "--state-dir", t.TempDir())
	if fresh.code != 1 || !strings.Contains(fresh.stderr, "creds rotate") || !strings.Contains(fresh.stderr, "missing") {
		t.Errorf("env without local secrets: exit %d, %q", fresh.code, fresh.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("fmt")...)...)
	e.assertNothingLeft()
}

// mlflowServer runs the real MLflow tracking server with basic auth whose
// admin password is password, on a free loopback port. It returns its URL.
func mlflowServer(t *testing.T, password string) string {
	t.Helper()
	return mlflowServerWith(t, password, nil, nil)
}

// mlflowServerWith is mlflowServer with more server arguments and
// environment.
func mlflowServerWith(t *testing.T, password string, args, environ []string) string {
	t.Helper()
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; scripts/mlflow-venv.sh makes one)")
	}
	dir := t.TempDir()
	ini := filepath.Join(dir, "basic_auth.ini")
	must(t, os.WriteFile(ini, []byte(fmt.Sprintf("[mlflow]\ndefault_permission = EDIT\ndatabase_uri = sqlite:///%s/auth.db\n"+
		"admin_username = admin\nadmin_password = %s\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n", dir, password)), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(filepath.Join(venv, "bin", "mlflow"), "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
		"--port", fmt.Sprint(port), "--workers", "1", "--backend-store-uri", "sqlite:///"+dir+"/mlflow.db")
	cmd.Args = append(cmd.Args, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MLFLOW_AUTH_CONFIG_PATH=" + ini,
		"MLFLOW_FLASK_SERVER_SECRET_KEY=test-secret-key-for-rotation", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false"}, environ...)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	recordFileAtEnd(t, "MLflow server log of "+t.Name(), logf.Name())
	// mlflow server forks uvicorn: stop the whole group.
	_, err = proctest.Start(t, cmd, 20*time.Second)
	must(t, err)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("MLflow server did not answer /health within 2 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func mlflowAuthStatus(t *testing.T, url, user, password string) int {
	t.Helper()
	return usersGetStatus(t, url, "admin", user, password)
}

// TestCredsRotate: a new key and password in place, the env file rewritten,
// exactly one working key left; also from a machine without local secrets.
func TestCredsRotate(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("rot")...)...)
	old := readState(t, filepath.Join(e.stateDir, "rot"))
	server := mlflowServer(t, old.MLflowPassword)
	if mlflowAuthStatus(t, server, "admin", old.MLflowPassword) != http.StatusOK {
		t.Fatal("the real server does not accept the stack's password")
	}

	at := testhooks.Hooks{TrackingURI: server}
	e.okWith(at, append([]string{"creds", "rotate"}, e.stackFlags("rot")...)...)
	now := readState(t, filepath.Join(e.stateDir, "rot"))
	if now.AccessKeyID == old.AccessKeyID || now.MLflowPassword == old.MLflowPassword {
		t.Fatal("rotation kept the old key or password")
	}
	if mlflowAuthStatus(t, server, "admin", now.MLflowPassword) != http.StatusOK || mlflowAuthStatus(t, server, "admin", old.MLflowPassword) != http.StatusUnauthorized {
		t.Error("the server must accept only the new password")
	}
	vars := sourceEnv(t, e.mlstack(append([]string{"env"}, e.stackFlags("rot")...)...).stdout)
	if vars["AWS_ACCESS_KEY_ID"] != now.AccessKeyID || vars["AWS_SECRET_ACCESS_KEY"] != now.SecretAccessKey {
		t.Error("env file not rewritten with the new credentials")
	}
	// The users' logins stay as they were; the admin's never goes there.
	if vars["MLFLOW_TRACKING_USERNAME"] != old.EnvUser || vars["MLFLOW_TRACKING_PASSWORD"] != old.Users[old.EnvUser] || now.Users[old.EnvUser] != old.Users[old.EnvUser] {
		t.Error("rotating the AWS key and the admin password changed the env file's MLflow login")
	}
	checkOneWorkingKey(t, e, "mlstack-rot", now)

	// SSM holds the password the server took, for the next instance and
	// for a machine that never had the secrets: rotating there works too.
	if got := ssmSecret(t, e, "/mlstack/rot/admin-password"); got != now.MLflowPassword {
		t.Error("SSM does not hold the rotated password")
	}
	fresh := t.TempDir()
	e.okWith(at, "creds", "rotate", "--stack", "rot", "--state-dir", fresh)
	freshState := readState(t, filepath.Join(fresh, "rot"))
	if mlflowAuthStatus(t, server, "admin", freshState.MLflowPassword) != http.StatusOK || ssmSecret(t, e, "/mlstack/rot/admin-password") != freshState.MLflowPassword {
		t.Error("rotation on a fresh machine: the server or SSM does not have the new password")
	}
	checkOneWorkingKey(t, e, "mlstack-rot", freshState)

	// SSM changed behind mlstack's back (a stale value): the server refuses
	// it, nothing is saved here, the access key is rotated all the same.
	stale := t.TempDir()
	_, err := e.ssmAs("test", "test", "").PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/mlstack/rot/admin-password"),
		Value: aws.String("stale-password-000000000000000001"), Type: "SecureString", Overwrite: aws.Bool(true)})
	must(t, err)
	res := e.mlstackWith(at, "creds", "rotate", "--stack", "rot", "--state-dir", stale)
	if res.code != 1 || !strings.Contains(res.stderr, "access key rotated") || !strings.Contains(res.stderr, "401") {
		t.Errorf("rotate with a stale SSM password: exit %d, %q", res.code, res.stderr)
	}
	var staleState localState
	b, err := os.ReadFile(filepath.Join(stale, "rot", "state.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &staleState))
	if staleState.MLflowPassword != "" {
		t.Error("a password the server refused was saved")
	}

	e.ok(append([]string{"down", "--yes"}, e.stackFlags("rot")...)...)
	e.assertNothingLeft()
}

// TestCredsRotateFreshMachine: the MLflow password is read from SSM when
// this machine never had it.
func TestCredsRotateFreshMachine(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("rot2")...)...)
	orig := readState(t, filepath.Join(e.stateDir, "rot2"))
	server := mlflowServer(t, orig.MLflowPassword)
	fresh := t.TempDir()
	at := testhooks.Hooks{TrackingURI: server}
	res := e.okWith(at, "creds", "rotate", "--stack", "rot2", "--state-dir", fresh)
	st := readState(t, filepath.Join(fresh, "rot2"))
	if mlflowAuthStatus(t, server, "admin", st.MLflowPassword) != http.StatusOK {
		t.Error("the fresh machine's password does not work")
	}
	checkOneWorkingKey(t, e, "mlstack-rot2", st)
	if res := e.mlstack("env", "--stack", "rot2", "--state-dir", fresh); res.code != 0 {
		t.Errorf("env on the fresh machine after rotation: %s", res.stderr)
	}
	// The hint for a login runs as printed (with the test's server) and
	// gives an env file that signs in.
	hints := regexp.MustCompile("`(mlstack [^`]*)`").FindAllStringSubmatch(res.stderr, -1)
	if len(hints) < 2 || !strings.HasPrefix(hints[0][1], "mlstack users add ") || !strings.HasPrefix(hints[1][1], "mlstack env ") {
		t.Fatalf("creds rotate on a fresh machine gives no login hint:\n%s", res.stderr)
	}
	e.okWith(at, strings.Fields(strings.TrimPrefix(hints[0][1], "mlstack "))...)
	vars := sourceEnv(t, e.ok(strings.Fields(strings.TrimPrefix(hints[1][1], "mlstack "))...).stdout)
	if userStatus(t, server, vars["MLFLOW_TRACKING_USERNAME"], vars["MLFLOW_TRACKING_PASSWORD"]) != http.StatusOK {
		t.Errorf("the login the hints give (%q) does not work", vars["MLFLOW_TRACKING_USERNAME"])
	}
	e.ok("down", "--yes", "--stack", "rot2", "--state-dir", fresh)
	e.assertNothingLeft()
}

// checkOneWorkingKey: the user has exactly the given key, and it can use the bucket.
func checkOneWorkingKey(t *testing.T, e *env, user string, st localState) {
	t.Helper()
	keys, err := e.iam.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	must(t, err)
	if len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != st.AccessKeyID {
		t.Fatalf("want exactly the new key, have %d key(s)", len(keys.AccessKeyMetadata))
	}
	motoAPI(t, e.moto, "/moto-api/reset-auth", "0")
	defer motoAPI(t, e.moto, "/moto-api/reset-auth", "inf")
	_, s3c, _ := clients(t, e.moto, st.AccessKeyID, st.SecretAccessKey)
	bucket := strings.TrimPrefix(user, "mlstack-")
	if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("mlstack-" + bucket + "-123456789012-eu-west-3-an"),
		Key: aws.String("artifacts/probe"), Body: strings.NewReader("x")}); err != nil {
		t.Errorf("the rotated key cannot write its bucket: %v", err)
	}
}

// ssmSecret reads a SecureString from moto, decrypted.
func ssmSecret(t *testing.T, e *env, name string) string {
	t.Helper()
	out, err := e.ssmAs("test", "test", "").GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	must(t, err)
	return aws.ToString(out.Parameter.Value)
}
