package server

// The user calls (users.go, ChangePassword, CheckLogin) against a fake of
// MLflow's basic-auth app: the endpoints, methods and error bodies of
// mlflow/server/auth (users/create, users/get, users/update-password,
// users/delete, users/list), 401 with WWW-Authenticate for a bad login,
// 403 "Permission denied" for a non-admin's admin call.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type fakeAuthUser struct {
	password string
	admin    bool
}

// fakeAuth holds the users; MLflow's auth store answers as it does.
type fakeAuth struct {
	mu       sync.Mutex
	users    map[string]*fakeAuthUser
	order    []string // creation order: users/list does not sort
	failList bool     // users/list answers a body that is not JSON
	fail500  bool     // every call is a 500 (a server in trouble)
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{users: map[string]*fakeAuthUser{"admin": {password: "admin-Pass-1234567", admin: true}}, order: []string{"admin"}}
}

func (f *fakeAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mlErr := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
	}
	if f.fail500 {
		mlErr(500, "INTERNAL_ERROR", "database is locked")
		return
	}
	name, pass, ok := r.BasicAuth()
	me := f.users[name]
	if !ok || me == nil || me.password != pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate."))
		return
	}
	var body map[string]string
	if r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			mlErr(400, "INVALID_PARAMETER_VALUE", err.Error())
			return
		}
	}
	route := r.Method + " " + r.URL.Path
	// Admin calls, and a user's calls on themselves, as MLflow's auth
	// validators allow them.
	target := body["username"]
	if r.Method == http.MethodGet {
		target = r.URL.Query().Get("username")
	}
	if !me.admin && (route == "POST /api/2.0/mlflow/users/create" || route == "GET /api/2.0/mlflow/users/list" || target != name) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Permission denied"))
		return
	}
	notFound := func(n string) { mlErr(404, "RESOURCE_DOES_NOT_EXIST", "User with username="+n+" not found") }
	switch route {
	case "POST /api/2.0/mlflow/users/create":
		if f.users[target] != nil {
			mlErr(400, "RESOURCE_ALREADY_EXISTS", "User '"+target+"' already exists.")
			return
		}
		f.users[target] = &fakeAuthUser{password: body["password"]}
		f.order = append(f.order, target)
		_ = json.NewEncoder(w).Encode(map[string]any{"user": map[string]any{"username": target, "is_admin": false}})
	case "GET /api/2.0/mlflow/users/get":
		u := f.users[target]
		if u == nil {
			notFound(target)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"user": map[string]any{"username": target, "is_admin": u.admin}})
	case "PATCH /api/2.0/mlflow/users/update-password":
		u := f.users[target]
		if u == nil {
			notFound(target)
			return
		}
		// A user changing their own password must give the current one.
		if !me.admin && body["current_password"] != me.password {
			mlErr(400, "INVALID_PARAMETER_VALUE", "current password is incorrect")
			return
		}
		u.password = body["password"]
	case "DELETE /api/2.0/mlflow/users/delete":
		if f.users[target] == nil {
			notFound(target)
			return
		}
		delete(f.users, target)
	case "GET /api/2.0/mlflow/users/list":
		if f.failList {
			_, _ = w.Write([]byte("<html>maintenance</html>"))
			return
		}
		var list []map[string]any
		for _, n := range f.order {
			if u := f.users[n]; u != nil {
				list = append(list, map[string]any{"username": n, "is_admin": u.admin})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"users": list})
	default:
		mlErr(404, "ENDPOINT_NOT_FOUND", r.URL.Path)
	}
}

func authServer(t *testing.T) (*fakeAuth, string) {
	t.Helper()
	f := newFakeAuth()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts.URL
}

// noPassword fails the test if err's text holds a password.
func noPassword(t *testing.T, err error, passwords ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, p := range passwords {
		if strings.Contains(err.Error(), p) {
			t.Errorf("error %q holds a password", err)
		}
	}
}

func TestUsersLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, uri := authServer(t)
	admin := &Client{URI: uri, User: "admin", Password: "admin-Pass-1234567"}

	for _, n := range []string{"zed", "alice"} {
		if err := admin.CreateUser(ctx, n, n+"-Pass-1234567"); err != nil {
			t.Fatalf("CreateUser %s: %v", n, err)
		}
	}
	err := admin.CreateUser(ctx, "alice", "other-Pass-1234567")
	if !errors.Is(err, ErrUserExists) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second CreateUser alice = %v, want ErrUserExists with the server's text", err)
	}
	noPassword(t, err, "other-Pass-1234567", admin.Password)

	users, err := admin.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{"admin", true}, {"alice", false}, {"zed", false}}
	if len(users) != len(want) {
		t.Fatalf("ListUsers = %+v, want %+v", users, want)
	}
	for i := range want {
		if users[i] != want[i] {
			t.Errorf("ListUsers[%d] = %+v, want %+v (sorted by name)", i, users[i], want[i])
		}
	}

	alice := &Client{URI: uri, User: "alice", Password: "alice-Pass-1234567"}
	if err := alice.CheckLogin(ctx); err != nil {
		t.Errorf("CheckLogin alice: %v", err)
	}
	if err := admin.SetPassword(ctx, "alice", "alice-New-1234567"); err != nil {
		t.Fatalf("SetPassword alice: %v", err)
	}
	if ok, err := alice.LoginWorks(ctx); ok || err != nil {
		t.Errorf("LoginWorks with the old password = %v, %v; want false, nil", ok, err)
	}
	err = alice.CheckLogin(ctx)
	var he *httpError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Errorf("CheckLogin with the old password = %v, want a 401", err)
	}
	noPassword(t, err, "alice-Pass-1234567")
	alice.Password = "alice-New-1234567"
	if ok, err := alice.LoginWorks(ctx); !ok || err != nil {
		t.Errorf("LoginWorks with the new password = %v, %v; want true, nil", ok, err)
	}

	// A user's own change sends the current password; the client keeps the old one.
	if err := alice.ChangePassword(ctx, "alice-Own-1234567"); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if alice.Password != "alice-New-1234567" {
		t.Errorf("ChangePassword switched the client's password to %q", alice.Password)
	}
	if ok, _ := alice.LoginWorks(ctx); ok {
		t.Error("the old password still works after ChangePassword")
	}
	alice.Password = "alice-Own-1234567"
	if ok, err := alice.LoginWorks(ctx); !ok || err != nil {
		t.Errorf("LoginWorks after ChangePassword = %v, %v", ok, err)
	}

	// A non-admin may not make users: 403, not a sentinel.
	err = alice.CreateUser(ctx, "mallory", "mallory-Pass-1234567")
	if err == nil || errors.Is(err, ErrUserExists) || !strings.Contains(err.Error(), "403") {
		t.Errorf("CreateUser as a non-admin = %v, want a plain 403", err)
	}

	if err := admin.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser alice: %v", err)
	}
	if ok, err := alice.LoginWorks(ctx); ok || err != nil {
		t.Errorf("LoginWorks of a deleted user = %v, %v; want false, nil", ok, err)
	}
}

func TestUsersMissing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, uri := authServer(t)
	admin := &Client{URI: uri, User: "admin", Password: "admin-Pass-1234567"}
	for name, call := range map[string]func() error{
		"SetPassword": func() error { return admin.SetPassword(ctx, "ghost", "ghost-Pass-1234567") },
		"DeleteUser":  func() error { return admin.DeleteUser(ctx, "ghost") },
	} {
		err := call()
		if !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("%s of a missing user = %v, want ErrNoSuchUser", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "RESOURCE_DOES_NOT_EXIST") {
			t.Errorf("%s: %q lost the server's answer", name, err)
		}
		noPassword(t, err, "ghost-Pass-1234567", admin.Password)
	}
}

// TestUsersServerErrors: failures that are neither a sentinel nor a 401
// stay errors, and an answer that is not JSON is one.
func TestUsersServerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, uri := authServer(t)
	admin := &Client{URI: uri, User: "admin", Password: "admin-Pass-1234567"}

	f.mu.Lock()
	f.failList = true
	f.mu.Unlock()
	if users, err := admin.ListUsers(ctx); err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
		t.Errorf("ListUsers of an HTML page = %v, %v; want a JSON error", users, err)
	}

	f.mu.Lock()
	f.fail500 = true
	f.mu.Unlock()
	for name, call := range map[string]func() error{
		"CreateUser":  func() error { return admin.CreateUser(ctx, "bob", "bob-Pass-1234567") },
		"SetPassword": func() error { return admin.SetPassword(ctx, "bob", "bob-Pass-1234567") },
		"DeleteUser":  func() error { return admin.DeleteUser(ctx, "bob") },
		"ListUsers":   func() error { _, err := admin.ListUsers(ctx); return err },
		"LoginWorks": func() error {
			ok, err := admin.LoginWorks(ctx)
			if ok {
				return errors.New("LoginWorks said true")
			}
			return err
		},
	} {
		err := call()
		if err == nil || errors.Is(err, ErrUserExists) || errors.Is(err, ErrNoSuchUser) ||
			!strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
			t.Errorf("%s on a 500 = %v, want the status and MLflow's code", name, err)
		}
	}
}

func TestUserError(t *testing.T) {
	t.Parallel()
	exists := &httpError{Status: 400, code: "RESOURCE_ALREADY_EXISTS", text: "POST /x: 400 Bad Request: RESOURCE_ALREADY_EXISTS"}
	other := &httpError{Status: 400, code: "INVALID_PARAMETER_VALUE", text: "POST /x: 400"}
	plain := errors.New("connection refused")
	for _, tt := range []struct {
		name string
		in   error
		want error // the sentinel it must match, or nil
	}{
		{"matching code", exists, ErrUserExists},
		{"other code", other, nil},
		{"not an HTTP answer", plain, nil},
		{"no error", nil, nil},
	} {
		got := userError(tt.in, "RESOURCE_ALREADY_EXISTS", ErrUserExists)
		switch {
		case tt.want != nil && (!errors.Is(got, tt.want) || !errors.Is(got, tt.in)):
			t.Errorf("%s: %v does not wrap both %v and the answer", tt.name, got, tt.want)
		case tt.want == nil && got != tt.in:
			t.Errorf("%s: userError = %v, want %v unchanged", tt.name, got, tt.in)
		}
	}
}
