package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/testhooks"
)

// userStatus is the server's answer to user's own users/get: 200 when it
// takes the login, 401 when it does not.
func userStatus(t *testing.T, server, user, password string) int {
	t.Helper()
	return usersGetStatus(t, server, user, user, password)
}

// usersGetStatus is the status of users/get?username=about signed in as user.
func usersGetStatus(t *testing.T, server, about, user, password string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, server+"/api/2.0/mlflow/users/get?username="+url.QueryEscape(about), nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestUsers: MLflow users made, listed, given new passwords and removed
// through the real server's API as its admin; their logins kept 0600 in
// the state and handed out by `env --user` in every format; the admin's
// never leaves the state; bad names are refused before anything happens.
func TestUsers(t *testing.T) {
	e := newEnv(t)
	const stack = "team"
	flags := e.stackFlags(stack)
	up := e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR, "--user", "carol"}, flags...)...)
	if !strings.Contains(up.stderr, "MLflow user carol, made once the server answers") {
		t.Errorf("up --no-wait does not say when carol is made:\n%s", up.stderr)
	}
	dir := filepath.Join(e.stateDir, stack)
	st := readState(t, dir)
	if st.EnvUser != "carol" || st.Users["carol"] == "" {
		t.Fatalf("up --user carol: env user %q", st.EnvUser)
	}
	server := mlflowServer(t, st.MLflowPassword)
	at := testhooks.Hooks{TrackingURI: server}
	users := func(args ...string) result {
		return e.mlstackWith(at, append(append([]string{"users"}, args...), flags...)...)
	}

	// Bad input: nothing reaches the server or the state.
	for _, bad := range [][]string{{"add", "admin"}, {"add", "-x"}, {"add", "no spaces"}, {"add"}, {"passwd", "admin"}, {"remove", "admin"}, {"list", "extra"}} {
		if res := users(bad...); res.code != 2 {
			t.Errorf("users %v: exit %d, want 2 (usage)\n%s", bad, res.code, res.stderr)
		}
	}
	if res := e.mlstack(append([]string{"env", "--user", "admin"}, flags...)...); res.code != 2 || strings.Contains(res.stdout, st.MLflowPassword) {
		t.Errorf("env --user admin: exit %d, want 2 and no admin password", res.code)
	}

	// NAME before the flags, as people type it.
	e.okWith(at, append([]string{"users", "add", "alice"}, flags...)...)
	alice := readState(t, dir).Users["alice"]
	if alice == "" || userStatus(t, server, "alice", alice) != http.StatusOK {
		t.Fatal("users add alice: no working login saved")
	}
	if res := users("add", "alice"); res.code != 1 || !strings.Contains(res.stderr, "exists already") || !strings.Contains(res.stderr, "users passwd") {
		t.Errorf("adding alice twice: exit %d, %q", res.code, res.stderr)
	}
	if got := readState(t, dir).Users["alice"]; got != alice || userStatus(t, server, "alice", alice) != http.StatusOK {
		t.Error("a refused add changed alice's saved login")
	}
	list := users("list")
	if list.code != 0 || !regexpLine(list.stdout, `admin\s+admin\s+admin \(state only\)`) || !regexpLine(list.stdout, `alice\s+user\s+yes`) {
		t.Errorf("users list:\n%s%s", list.stdout, list.stderr)
	}

	checkEnvUser(t, e, flags, "alice", alice, st.MLflowPassword)
	if res := e.mlstack(append([]string{"env", "--user", "nobody"}, flags...)...); res.code != 1 || !strings.Contains(res.stderr, "users add --stack team --state-dir "+e.stateDir+" nobody`") {
		t.Errorf("env --user nobody: exit %d, %q", res.code, res.stderr)
	}

	// A new password for one user: the AWS key and the other logins stay.
	before := readState(t, dir)
	for _, cmd := range [][]string{{"users", "passwd", "alice"}, {"creds", "rotate", "--user", "alice"}} {
		e.okWith(at, append(cmd, flags...)...)
		now := readState(t, dir)
		if now.Users["alice"] == alice || userStatus(t, server, "alice", now.Users["alice"]) != http.StatusOK || userStatus(t, server, "alice", alice) != http.StatusUnauthorized {
			t.Fatalf("%v: the server must take only alice's new password", cmd)
		}
		if now.AccessKeyID != before.AccessKeyID || now.MLflowPassword != before.MLflowPassword || now.Users["carol"] != before.Users["carol"] {
			t.Errorf("%v changed the AWS key, the admin password or another login", cmd)
		}
		alice = now.Users["alice"]
		checkEnvUser(t, e, flags, "alice", alice, st.MLflowPassword)
	}
	if res := e.mlstack(append([]string{"creds", "rotate", "--user", "alice", "--skip-mlflow"}, flags...)...); res.code != 2 {
		t.Errorf("creds rotate --user with --skip-mlflow: exit %d", res.code)
	}

	e.okWith(at, append([]string{"users", "remove", "alice"}, flags...)...)
	if userStatus(t, server, "alice", alice) != http.StatusUnauthorized || readState(t, dir).Users["alice"] != "" {
		t.Error("users remove alice: the login still works or is still saved")
	}
	if res := e.mlstack(append([]string{"env", "--user", "alice"}, flags...)...); res.code != 1 {
		t.Errorf("env --user for a removed user: exit %d", res.code)
	}
	if res := users("passwd", "alice"); res.code != 1 || !strings.Contains(res.stderr, "users add") {
		t.Errorf("passwd of a removed user: exit %d, %q", res.code, res.stderr)
	}
	if userStatus(t, server, "admin", st.MLflowPassword) != http.StatusOK {
		t.Error("the admin login stopped working")
	}
	info, err := os.Stat(filepath.Join(dir, "state.json"))
	if must(t, err); info.Mode().Perm() != 0o600 {
		t.Errorf("state.json mode %o", info.Mode().Perm())
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// checkEnvUser: `env --user name` signs in as name with its saved password
// in every format, and never prints the admin's password.
func checkEnvUser(t *testing.T, e *env, flags []string, name, password, adminPW string) {
	t.Helper()
	for _, format := range []string{"shell", "dotenv", "json", "github"} {
		res := e.ok(append([]string{"env", "--user", name, "--format", format}, flags...)...)
		if strings.Contains(res.stdout, adminPW) {
			t.Errorf("env --format %s --user %s prints the admin password", format, name)
		}
		var vars map[string]string
		switch format {
		case "shell":
			vars = sourceEnv(t, res.stdout)
		case "json":
			must(t, json.Unmarshal([]byte(res.stdout), &vars))
		case "dotenv", "github":
			if !strings.Contains(res.stdout, `MLFLOW_TRACKING_USERNAME`) || !strings.Contains(res.stdout, password) {
				t.Errorf("env --format %s --user %s lacks the login", format, name)
			}
			if format == "github" && !strings.Contains(res.stdout, "::add-mask::"+password+"\n") {
				t.Errorf("env --format github --user %s does not mask the password", name)
			}
			continue
		}
		if vars["MLFLOW_TRACKING_USERNAME"] != name || vars["MLFLOW_TRACKING_PASSWORD"] != password {
			t.Errorf("env --format %s --user %s signs in as %q", format, name, vars["MLFLOW_TRACKING_USERNAME"])
		}
	}
}

func regexpLine(text, re string) bool {
	return regexp.MustCompile(`(?m)^` + re + `\s*$`).MatchString(text)
}
