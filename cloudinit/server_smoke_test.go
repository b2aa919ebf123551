package cloudinit

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMLflowServerSmoke runs the rendered server for real: the unit's
// ExecStart and Environment= lines with the rendered mlstack_mlflow.py and
// mlflow.env (read the way systemd reads them), the allowed-hosts file that
// allowed-hosts.sh writes from a fake IMDS, and what mlstack_keys.py makes
// from SSM secrets in moto (basic-auth config, secrets env file, TLS key and
// certificate), against a venv holding the pinned MLflow: one process
// serves HTTPS with the published certificate, auth, the Host check and the
// UI's origins hold. It needs that venv (about 1 GB of wheels), which
// scripts/test.sh makes with scripts/mlflow-venv.sh:
//
//	MLSTACK_TEST_MLFLOW_VENV=$(scripts/mlflow-venv.sh) go test ./cloudinit -run Smoke
func TestMLflowServerSmoke(t *testing.T) {
	t.Parallel()
	p := validParams()
	const dns, ip = "ec2-54-1-2-3.compute-1.amazonaws.com", "54.1.2.3"
	r := newServerRig(t, p, dns, ip)
	// The second ExecStartPre: secrets from SSM, the TLS key and certificate.
	password, secretKey := `a'b"c$d\e%f#g;h`+"`x`", `k'e"y$HOME\%(x)s-0123456789`
	r.keys.putSecrets(password, secretKey)
	r.startPre()
	env := r.environment("")
	server, _ := r.start("server", r.execArgs(unitValue(t, r.unit, "ExecStart"), env), env)
	client, port := r.client(), r.port

	// One process serves: nothing forked a worker or waits for one.
	if kids := childrenOf(t, server.Process.Pid); len(kids) > 0 {
		t.Errorf("the server process %d has children %v, want none", server.Process.Pid, kids)
	}

	// No clear text: plain HTTP gets no answer from the TLS port.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the server answers plain HTTP")
		}
	}

	base := "https://127.0.0.1:" + port
	user := p.AdminUsername // who call signs in as
	call := func(method, path, host, password, body, origin string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if password != "" {
			req.SetBasicAuth(user, password)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	pw := password
	const search = "/api/2.0/mlflow/experiments/search?max_results=1"
	const uiSearch = "/ajax-api/2.0/mlflow/runs/search"
	for _, tt := range []struct {
		name, method, path, host, password, body, origin string
		want                                             int
		inBody                                           string
	}{
		{"dns:5000", "GET", search, dns + ":5000", pw, "", "", 200, ""},
		{"dns", "GET", search, dns, pw, "", "", 200, ""},
		{"ip:5000", "GET", search, ip + ":5000", pw, "", "", 200, ""},
		{"localhost", "GET", search, "localhost:5000", pw, "", "", 200, ""},
		{"wrong password", "GET", search, dns, "wrong-password-123", "", "", 401, ""},
		{"no credentials", "GET", search, dns, "", "", "", 401, ""},
		{"foreign host", "GET", search, "evil.example.com", pw, "", "", 403, ""},
		{"foreign host:5000", "GET", search, "evil.example.com:5000", pw, "", "", 403, ""},
		{"create experiment", "POST", "/api/2.0/mlflow/experiments/create", dns, pw, `{"name":"smoke"}`, "", 200, ""},
		{"artifact root", "GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke", dns, pw, "", "", 200,
			`"artifact_location": "s3://` + p.Bucket + `/artifacts/`},
		// The UI's run list: a browser at the tracking URI sends its origin.
		{"UI at the DNS name", "POST", uiSearch, dns + ":5000", pw, `{"experiment_ids":["0"]}`, "https://" + dns + ":5000", 200, ""},
		{"UI at the IP", "POST", uiSearch, ip + ":5000", pw, `{"experiment_ids":["0"]}`, "https://" + ip + ":5000", 200, ""},
		{"foreign origin", "POST", uiSearch, dns + ":5000", pw, `{"experiment_ids":["0"]}`, "https://evil.example.com", 403, ""},
	} {
		code, body := call(tt.method, tt.path, tt.host, tt.password, tt.body, tt.origin)
		if code != tt.want || !strings.Contains(body, tt.inBody) {
			t.Errorf("%s: %s %s (Host %s) = %d %.300s; want %d with %q", tt.name, tt.method, tt.path, tt.host, code, body, tt.want, tt.inBody)
		}
	}
	teamRoles(t, func(as, password, method, path, body string) (int, string) {
		user = as
		return call(method, path, dns, password, body, "")
	}, pw)
}

// teamRoles: what the basic-auth config mlstack_keys.py writes lets each
// role do. Two non-admin users, made by the admin: each reads and logs
// runs into the other's experiment (default_permission EDIT), neither can
// delete or manage the other's experiment nor manage users; the creator
// of an experiment may delete it.
func teamRoles(t *testing.T, call func(user, password, method, path, body string) (int, string), adminPW string) {
	t.Helper()
	const api = "/api/2.0/mlflow/"
	const alicePW, bobPW = "alice-password-0123456789", "bob-password-0123456789"
	admin := func(method, path, body string) (int, string) { return call("admin", adminPW, method, api+path, body) }
	alice := func(method, path, body string) (int, string) { return call("alice", alicePW, method, api+path, body) }
	bob := func(method, path, body string) (int, string) { return call("bob", bobPW, method, api+path, body) }
	for _, u := range [][2]string{{"alice", alicePW}, {"bob", bobPW}} {
		if code, body := admin("POST", "users/create", `{"username":"`+u[0]+`","password":"`+u[1]+`"}`); code != 200 {
			t.Fatalf("admin creates user %s: %d %.300s", u[0], code, body)
		}
	}
	code, body := alice("POST", "experiments/create", `{"name":"alices"}`)
	var created struct {
		ID string `json:"experiment_id"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &created) != nil || created.ID == "" {
		t.Fatalf("alice creates an experiment: %d %.300s", code, body)
	}
	exp := `{"experiment_id":"` + created.ID + `"}`
	for _, tt := range []struct {
		name               string
		as                 func(method, path, body string) (int, string)
		method, path, body string
		want               int
	}{
		{"bob sees alice's experiment", bob, "GET", "experiments/get?experiment_id=" + created.ID, "", 200},
		{"bob logs a run into it", bob, "POST", "runs/create", exp, 200},
		{"bob cannot delete it", bob, "POST", "experiments/delete", exp, 403},
		{"bob renames it (EDIT may)", bob, "POST", "experiments/update", `{"experiment_id":"` + created.ID + `","new_name":"bobs"}`, 200},
		{"bob cannot grant himself MANAGE", bob, "POST", "experiments/permissions/create",
			`{"experiment_id":"` + created.ID + `","username":"bob","permission":"MANAGE"}`, 403},
		{"bob cannot make users", bob, "POST", "users/create", `{"username":"mallory","password":"mallory-password-0123"}`, 403},
		{"bob cannot delete users", bob, "DELETE", "users/delete", `{"username":"alice"}`, 403},
		{"bob cannot set alice's password", bob, "PATCH", "users/update-password", `{"username":"alice","password":"taken-over-0123456789"}`, 403},
		{"bob cannot make himself admin", bob, "PATCH", "users/update-admin", `{"username":"bob","is_admin":true}`, 403},
		{"alice deletes her experiment", alice, "POST", "experiments/delete", exp, 200},
	} {
		if code, body := tt.as(tt.method, tt.path, tt.body); code != tt.want {
			t.Errorf("%s: %s %s = %d %.300s; want %d", tt.name, tt.method, tt.path, code, body, tt.want)
		}
	}
}

// childrenOf lists the pids whose parent is pid, from /proc/*/stat.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Fatalf("cannot list /proc: %v", err)
	}
	var kids []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, strings.Fields(string(b))[0])
		}
	}
	return kids
}
