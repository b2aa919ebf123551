//go:build boottest

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/browsertest"
)

// phaseTeam: a second user, made with `mlstack users add` through the
// server's API, with the variables `mlstack env --user bob` prints: sees
// alice's experiment and run, logs a run into it, cannot delete it or its
// runs, cannot manage users (scripts/boot/teammate.py).
func (b *bootTest) phaseTeam(t *testing.T) {
	b.mlstack(t, "users", "add", "bob")
	b.addStateSecrets(t)
	vars := b.envFile(t, "env-bob.sh", "--user", "bob")
	if vars["MLFLOW_TRACKING_USERNAME"] != "bob" {
		t.Fatalf("env --user bob signs in as %q", vars["MLFLOW_TRACKING_USERNAME"])
	}
	var facts struct {
		RunID string `json:"run_id"`
	}
	b.python(t, "env-bob.sh", "teammate", &facts)
	users := b.users(t)
	for name, want := range map[string]string{"alice": "user yes (env file)", "bob": "user yes", "admin": "admin"} {
		if got, ok := users[name]; !ok || !strings.HasPrefix(got, want) {
			t.Fatalf("users list shows %s as %q, want %q…", name, got, want)
		}
	}
}

// users is `mlstack users list` (its table on stdout): each user's name
// and the rest of its row, the columns one space apart.
func (b *bootTest) users(t *testing.T) map[string]string {
	t.Helper()
	users := map[string]string{}
	for _, line := range strings.Split(b.mlstack(t, "users", "list"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			users[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return users
}

// phaseUI: the MLflow UI in Debian's chromium; `mlstack check`; the
// bytecode job; the numbers.
func (b *bootTest) phaseUI(t *testing.T) {
	b.checkUI(t)
	b.mlstack(t, "check")
	b.checkBytecode(t)
	b.reportNumbers(t)
}

// checkUI: the UI at the tracking URI in Debian's chromium, headless, the
// pinned certificate trusted for this run alone: login, the experiment,
// the run in its run list (the UI's POST runs/search, which MLflow refuses
// without the CORS origins), the run's metric; a screenshot is kept
// (under $MLSTACK_TEST_ARTIFACTS when set).
func (b *bootTest) checkUI(t *testing.T) {
	uri := "https://" + b.inst.dns + ":5000"
	opts, err := uiBrowserOptions(uiFlags{uri: uri, cert: b.cert, resolve: b.inst.dns + "=127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(b.work, "ui")
	if root := os.Getenv("MLSTACK_TEST_ARTIFACTS"); root != "" {
		out = filepath.Join(root, "boot-ui-"+b.cfg.name())
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := browsertest.Check(ctx, opts, browsertest.UICheck{URI: uri, User: "alice", Password: b.password,
		Experiment: "mlstack-boot-test", Run: "boot", Metric: "loss", Value: 0.2, OutDir: out})
	if err != nil {
		t.Fatalf("the MLflow UI in the browser: %s", b.mask(err.Error()))
	}
	t.Logf("the UI shows the experiment, run and metric (%s); runs/search answered %s; screenshot %s",
		stepTimes(res.Steps), strings.Join(res.RunsSearch, ", "), res.Screenshot)
}

// checkBytecode: the background job compiled the venv's bytecode after
// the server answered, so later starts read .pyc files.
func (b *bootTest) checkBytecode(t *testing.T) {
	var state string
	for i := 0; i < 240; i++ {
		out, _ := b.inContainer(t, nil, "systemctl", "show", "-p", "ActiveState,SubState,Result", "mlstack-bytecode.service")
		props := map[string]string{}
		for _, l := range strings.Fields(out) {
			k, v, _ := strings.Cut(l, "=")
			props[k] = v
		}
		state = props["ActiveState"] + " " + props["SubState"] + " " + props["Result"]
		if !strings.Contains(state, "running") && !strings.Contains(state, "activating") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// RemainAfterExit keeps the finished unit, and its result, loaded.
	if state != "active exited success" {
		t.Fatalf("mlstack-bytecode.service: %q, want active exited success", state)
	}
	b.must(t, "sh", "-c", "ls /opt/mlflow/lib/python3*/site-packages/mlflow/__pycache__/__init__.cpython-*.pyc")
}

// reportNumbers logs boot-to-healthy and the server's memory, after the
// client run and after the UI, and checks the process count and the RSS
// limit (the locked MLflow: one uvicorn process; another version runs as
// `mlflow server` and its child, without the limit).
func (b *bootTest) reportNumbers(t *testing.T) {
	b.rssUI = b.measureRSS(t)
	t.Logf("boot to healthy: %.1f s; server memory after the client run: RSS %d MiB (PSS %d MiB), %d process(es); after the UI too: RSS %d MiB (PSS %d MiB)",
		b.bootToHealthy.Seconds(), b.rss.rss, b.rss.pss, b.rss.procs, b.rssUI.rss, b.rssUI.pss)
	if b.mlflow != b.cfg.locked {
		if b.rss.procs != 2 {
			t.Fatalf("MLflow %s runs as %d processes, want mlflow server and its child", b.mlflow, b.rss.procs)
		}
		return
	}
	if b.rss.procs != 1 {
		t.Fatalf("the server runs as %d processes, want 1", b.rss.procs)
	}
	if b.rss.rss > b.cfg.maxRSS {
		t.Fatalf("server RSS %d MiB is over %d MiB (MLSTACK_BOOT_MAX_RSS)", b.rss.rss, b.cfg.maxRSS)
	}
}
