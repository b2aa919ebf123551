package provision

// `mlstack users add|ls|rm|passwd` over the fake AWS and a fake of
// MLflow's basic-auth user API (the endpoints and error bodies of
// mlflow/server/auth), reached through hooks.TrackingURI.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// usersAPI holds the server's users (name -> password; admin is the admin).
type usersAPI struct {
	mu       sync.Mutex
	users    map[string]string
	failList bool
}

func (s *usersAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mlErr := func(status int, code, msg string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
	}
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || s.users[u] != p {
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("You are not authenticated."))
		return
	}
	var body map[string]string
	if r.Method != http.MethodGet {
		_ = json.NewDecoder(r.Body).Decode(&body)
	}
	name := body["username"]
	switch r.Method + " " + r.URL.Path {
	case "POST /api/2.0/mlflow/users/create":
		if _, ok := s.users[name]; ok {
			mlErr(400, "RESOURCE_ALREADY_EXISTS", "User '"+name+"' already exists.")
			return
		}
		s.users[name] = body["password"]
		_, _ = w.Write([]byte(`{"user":{"username":"` + name + `","is_admin":false}}`))
	case "PATCH /api/2.0/mlflow/users/update-password":
		if _, ok := s.users[name]; !ok {
			mlErr(404, "RESOURCE_DOES_NOT_EXIST", "User with username="+name+" not found")
			return
		}
		s.users[name] = body["password"]
	case "DELETE /api/2.0/mlflow/users/delete":
		if _, ok := s.users[name]; !ok {
			mlErr(404, "RESOURCE_DOES_NOT_EXIST", "User with username="+name+" not found")
			return
		}
		delete(s.users, name)
	case "GET /api/2.0/mlflow/users/list":
		if s.failList {
			mlErr(500, "INTERNAL_ERROR", "database is locked")
			return
		}
		var list []map[string]any
		for n := range s.users {
			list = append(list, map[string]any{"username": n, "is_admin": n == "admin"})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"users": list})
	default:
		mlErr(404, "ENDPOINT_NOT_FOUND", r.URL.Path)
	}
}

func (s *usersAPI) password(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.users[name]
	return p, ok
}

// usersRig is a stack made by up over the fake, and the server its admin
// signs in to.
func usersRig(t *testing.T) (f *cloudfake.FakeAWS, api *usersAPI, opts func(name string) (UsersOptions, *bytes.Buffer, *bytes.Buffer)) {
	t.Helper()
	f = newInstalledFake(t)
	dir := upStack(t, f, "demo")
	sec := savedSecrets(t, dir, "demo")
	api = &usersAPI{users: map[string]string{"admin": sec.MLflowPassword, sec.EnvUser: sec.Users[sec.EnvUser]}}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	return f, api, func(name string) (UsersOptions, *bytes.Buffer, *bytes.Buffer) {
		out, log := &bytes.Buffer{}, &bytes.Buffer{}
		return UsersOptions{Stack: Stack{Name: "demo", StateDir: dir}, Streams: Streams{Out: out, Log: log}, Name: name,
			hooks: testhooks.Hooks{TrackingURI: ts.URL}}, out, log
	}
}

func TestUsersAddListPasswdRemove(t *testing.T) {
	f, api, opts := usersRig(t)
	ctx := f.Ctx()
	o, _, log := opts("alice")
	dir := o.StateDir
	if err := AddUser(ctx, o); err != nil {
		t.Fatalf("users add: %v\n%s", err, log)
	}
	saved := savedSecrets(t, dir, "demo").Users["alice"]
	if got, ok := api.password("alice"); !ok || got != saved || len(saved) != 32 {
		t.Errorf("server has alice=%q (%v), state %q: want the same 32-character password", got, ok, saved)
	}
	if !strings.Contains(log.String(), "env --stack demo") || !strings.Contains(log.String(), "--user alice") {
		t.Errorf("add does not say how to get alice's variables:\n%s", log)
	}

	// Adding again fails, says what to run instead and keeps the saved login.
	o, _, _ = opts("alice")
	err := AddUser(ctx, o)
	if !errors.Is(err, server.ErrUserExists) || !strings.Contains(err.Error(), "mlstack users passwd --stack demo") {
		t.Errorf("second add = %v, want ErrUserExists and the passwd hint", err)
	}
	if now := savedSecrets(t, dir, "demo").Users["alice"]; now != saved {
		t.Errorf("a failed add changed alice's saved password")
	}

	o, out, log := opts("")
	if err := ListUsers(ctx, o); err != nil {
		t.Fatalf("users ls: %v\n%s", err, log)
	}
	sec := savedSecrets(t, dir, "demo")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	wantRows := map[string]string{"admin": "admin admin admin (state only)", "alice": "alice user yes", sec.EnvUser: sec.EnvUser + " user yes (env file)"}
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "USER ROLE LOGIN HERE" {
		t.Fatalf("users ls:\n%s", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if want := wantRows[f[0]]; strings.Join(f, " ") != want {
			t.Errorf("users ls row %q, want %q", l, want)
		}
	}

	o, _, log = opts("alice")
	if err := SetUserPassword(ctx, o); err != nil {
		t.Fatalf("users passwd: %v\n%s", err, log)
	}
	next := savedSecrets(t, dir, "demo").Users["alice"]
	if got, _ := api.password("alice"); next == saved || got != next {
		t.Errorf("passwd: server %q, state %q, before %q: want a new one in both", got, next, saved)
	}

	o, _, log = opts("alice")
	if err := RemoveUser(ctx, o); err != nil {
		t.Fatalf("users rm: %v\n%s", err, log)
	}
	if _, ok := api.password("alice"); ok {
		t.Error("alice is still on the server")
	}
	if p, ok := savedSecrets(t, dir, "demo").Users["alice"]; ok || p != "" {
		t.Error("alice's login is still saved")
	}
}

func TestUsersMissingOnServer(t *testing.T) {
	f, _, opts := usersRig(t)
	ctx := f.Ctx()
	o, _, _ := opts("ghost")
	err := SetUserPassword(ctx, o)
	if !errors.Is(err, server.ErrNoSuchUser) || !strings.Contains(err.Error(), "mlstack users add --stack demo") {
		t.Errorf("passwd of a missing user = %v, want ErrNoSuchUser and the add hint", err)
	}
	if _, ok := savedSecrets(t, o.StateDir, "demo").Users["ghost"]; ok {
		t.Error("a failed passwd saved a login")
	}
	// rm of a user the server lacks still forgets it here.
	o, _, log := opts("ghost")
	if err := RemoveUser(ctx, o); err != nil || !strings.Contains(log.String(), "the server has no user ghost") {
		t.Errorf("rm of a missing user = %v\n%s", err, log)
	}
}

// TestUsersEnvUser: the env file's user gets its new password in the env
// file; removing it warns that the env file signs in as nobody.
func TestUsersEnvUser(t *testing.T) {
	f, api, opts := usersRig(t)
	ctx := f.Ctx()
	o, _, log := opts("")
	dir := local.StackDir(o.StateDir, "demo")
	envUser := savedSecrets(t, o.StateDir, "demo").EnvUser
	o.Name = envUser
	if err := SetUserPassword(ctx, o); err != nil {
		t.Fatalf("passwd %s: %v\n%s", envUser, err, log)
	}
	got, _ := api.password(envUser)
	env := readFile(t, dir.EnvFile())
	if !strings.Contains(string(env), "MLFLOW_TRACKING_PASSWORD='"+got+"'") || !strings.Contains(log.String(), "rewrote") {
		t.Errorf("env file after passwd of its user:\n%s\nwant the server's new password %q", env, got)
	}

	o, _, log = opts(envUser)
	if err := RemoveUser(ctx, o); err != nil {
		t.Fatalf("rm %s: %v", envUser, err)
	}
	if !strings.Contains(log.String(), "who is gone") || !strings.Contains(log.String(), "users add --stack demo") {
		t.Errorf("rm of the env file's user does not warn:\n%s", log)
	}
}

func TestUsersRefuseBadInput(t *testing.T) {
	f, api, opts := usersRig(t)
	ctx := f.Ctx()
	for name, call := range map[string]func(context.Context, UsersOptions) error{"add": AddUser, "rm": RemoveUser, "passwd": SetUserPassword} {
		o, _, _ := opts("admin")
		if err := call(ctx, o); !cloud.IsUsage(err) {
			t.Errorf("users %s admin = %v, want a usage error", name, err)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("bad input made AWS calls %v", calls)
	}
	if p, _ := api.password("admin"); p == "" {
		t.Error("the admin was touched")
	}
	api.mu.Lock()
	api.failList = true
	api.mu.Unlock()
	o, _, _ := opts("")
	if err := ListUsers(ctx, o); err == nil || !strings.Contains(err.Error(), "listing MLflow users") || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
		t.Errorf("ls on a failing server = %v", err)
	}
}

// In direct mode the removed user keeps the stack's shared AWS key: remove
// says so with the rotation's command, or rotates with RotateKey; proxied
// clients hold no key, so remove says nothing of keys.
func TestUsersRemoveSharedKey(t *testing.T) {
	for _, c := range []struct {
		name          string
		mode          string
		rotate        bool
		warn, rotated bool
	}{
		{"direct warns", ArtifactsDirect, false, true, false},
		{"direct rotates", ArtifactsDirect, true, false, true},
		{"proxied", ArtifactsProxied, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, _, opts := usersRig(t)
			ctx := f.Ctx()
			o, _, log := opts("alice")
			if c.mode == ArtifactsProxied {
				uo, _, _ := upOpts(o.StateDir, "demo")
				uo.Artifacts = ArtifactsProxied
				mustUp(t, f, uo)
			}
			if err := AddUser(ctx, o); err != nil {
				t.Fatalf("users add: %v\n%s", err, log)
			}
			before := savedSecrets(t, o.StateDir, "demo").AccessKeyID
			o, _, log = opts("alice")
			o.RotateKey = c.rotate
			if err := RemoveUser(ctx, o); err != nil {
				t.Fatalf("users remove: %v\n%s", err, log)
			}
			after := savedSecrets(t, o.StateDir, "demo").AccessKeyID
			hint := "`mlstack creds rotate --stack demo --state-dir " + o.StateDir + " --skip-mlflow`"
			if got := strings.Contains(log.String(), "keeps read/write access to the artifacts") && strings.Contains(log.String(), hint); got != c.warn {
				t.Errorf("warning with %s: %v, want %v:\n%s", hint, got, c.warn, log)
			}
			if c.mode == ArtifactsProxied && strings.Contains(log.String(), "AWS key") {
				t.Errorf("proxied remove speaks of the AWS key:\n%s", log)
			}
			keys := f.KeyIDs("mlstack-demo")
			if rotated := after != before && len(keys) == 1 && keys[0] == after; rotated != c.rotated {
				t.Errorf("rotated %v (key %q → %q, keys in IAM %v), want %v", rotated, before, after, keys, c.rotated)
			}
		})
	}
}
