package provision

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/cloudinit"
)

func TestHints(t *testing.T) {
	t.Parallel()
	h := hints{stack: "demo", stateDir: "/tmp/my state", region: "eu-west-3", profile: "admin"}
	for _, c := range []struct{ got, want string }{
		{h.cmd("down", "--yes"), "mlstack down --stack demo --region eu-west-3 --profile admin --state-dir '/tmp/my state' --yes"},
		{h.cmd("env"), "mlstack env --stack demo --state-dir '/tmp/my state'"},
		{h.cmd("creds rotate"), "mlstack creds rotate --stack demo --region eu-west-3 --profile admin --state-dir '/tmp/my state'"},
		{h.cmd("ls"), "mlstack ls --region eu-west-3 --profile admin"},
		{h.up([]string{"198.51.100.7/32", "203.0.113.0/24"}, true), "mlstack up --stack demo --region eu-west-3 --profile admin " +
			"--state-dir '/tmp/my state' --allow-cidr 198.51.100.7/32 --allow-cidr 203.0.113.0/24 --ssh"},
		{h.up([]string{"0.0.0.0/0"}, false), "mlstack up --stack demo --region eu-west-3 --profile admin --state-dir '/tmp/my state' --allow-cidr 0.0.0.0/0 --yes"},
		{hints{stack: "demo", stateDir: DefaultStateDir()}.cmd("status"), "mlstack status --stack demo"},
		{ShellLine([]string{"it's", "", "a b", "plain-1.2/x:y@z"}), `'it'\''s' '' 'a b' plain-1.2/x:y@z`},
	} {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

func TestCheckMLflowRelease(t *testing.T) {
	// Not parallel: it sets the process environment (t.Setenv).
	asked := 0
	var projectDown atomic.Bool
	pypi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		switch r.URL.Path {
		case "/pypi/mlflow/json":
			if projectDown.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte(`{"releases":{"3.5.0":[{"filename":"a.whl"}],"3.7.0":[{"filename":"b.whl"}],"3.8.0":[]}}`))
		case "/pypi/mlflow/3.5.0/json":
			w.Write([]byte(`{"info":{"yanked":false}}`))
		case "/pypi/mlflow/3.6.1/json":
			w.Write([]byte(`{"info":{"yanked":true,"yanked_reason":"broken wheel"}}`))
		case "/pypi/mlflow/3.9.9/json":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer pypi.Close()
	t.Setenv("MLSTACK_PYPI_URL", pypi.URL)
	for _, c := range []struct {
		version, err, log string
	}{
		{"3.5.0", "", ""},
		{"3.99.0", "--mlflow-version 3.99.0: PyPI has no such MLflow release", ""},
		{"3.7.0", "", ""}, // listed on the project's page only (a mirror)
		{"3.8.0", "--mlflow-version 3.8.0: PyPI has no such MLflow release", ""}, // listed without files
		{"3.6.1", "", "MLflow 3.6.1 was yanked from PyPI (broken wheel)"},
		{"3.9.9", "", "PyPI answered 503 Service Unavailable for MLflow 3.9.9: not checked"},
	} {
		p, log := bufProgress()
		err := checkMLflowRelease(context.Background(), c.version, p)
		if c.err == "" && err != nil || c.err != "" && (!cloud.IsUsage(err) || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.version, err, c.err)
		}
		if !strings.Contains(log.String(), c.log) {
			t.Errorf("%s: progress %q, want %q", c.version, log, c.log)
		}
	}
	// A release page missing and the project's page unreadable (a slow or
	// partial mirror): unknown, said and skipped, not "no such release".
	projectDown.Store(true)
	p, log := bufProgress()
	if err := checkMLflowRelease(context.Background(), "3.7.0", p); err != nil || !strings.Contains(log.String(), "could not tell whether PyPI has MLflow 3.7.0 (the project's page answered 503") {
		t.Errorf("project page down: %v, %q", err, log)
	}
	// The pinned default is not asked about; an unreachable PyPI is said and skipped.
	before := asked
	p, log = bufProgress()
	if err := checkMLflowRelease(context.Background(), cloudinit.DefaultMLflowVersion, p); err != nil || asked != before || log.Len() != 0 {
		t.Errorf("default version: %v, asked %d times, %q", err, asked-before, log)
	}
	pypi.Close()
	if err := checkMLflowRelease(context.Background(), "3.5.0", p); err != nil || !strings.Contains(log.String(), "could not ask PyPI whether MLflow 3.5.0 exists") {
		t.Errorf("PyPI down: %v, %q", err, log)
	}
}

func TestCostPerMonth(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		inst *cloud.InstanceInfo
		want float64
		ok   bool
	}{
		{nil, 0, true},
		{&cloud.InstanceInfo{Type: "t2.micro", State: "running"}, 13.40, true},
		{&cloud.InstanceInfo{Type: "t3.micro", State: "pending"}, 12.52, true},
		{&cloud.InstanceInfo{Type: "t2.micro", State: "stopped"}, 1.28, true},
		{&cloud.InstanceInfo{Type: "t2.micro", State: "shutting-down"}, 0, true},
		{&cloud.InstanceInfo{Type: "p5.48xlarge", State: "running"}, 0, false},
	} {
		got, ok := cloud.StackInfo{Instance: c.inst}.CostPerMonth()
		if got != c.want || ok != c.ok {
			t.Errorf("%+v: %v %v, want %v %v", c.inst, got, ok, c.want, c.ok)
		}
	}
}

func TestNonPublicCIDRs(t *testing.T) {
	t.Parallel()
	got := cloud.NonPublicCIDRs([]string{"10.0.0.1/32", "198.51.100.7/32", "192.168.0.0/16", "0.0.0.0/0", "100.64.1.0/24"})
	if strings.Join(got, " ") != "10.0.0.1/32 192.168.0.0/16 100.64.1.0/24" {
		t.Errorf("non-public: %v", got)
	}
}
