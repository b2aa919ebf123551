package cloudinit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/templates"
)

// The installer wheels the stub curl serves: the lock's hashes are of these.
const (
	stubUVWheel  = "stub uv wheel\n"
	stubPipWheel = "stub pip wheel\n"
)

// setupStubs are the commands mlstack-setup runs, each logging "NAME ARGS"
// (paths shortened to VENV, LOCK, WORK) to $CALLS. Knobs: $PYVER (what python3
// reports), $UV_FAILS / $PIP_FAILS / $APT_FAILS (fail that many calls first;
// "all" fails every call), $CURL_BAD_UV (serve a uv wheel with another hash).
var setupStubs = map[string]string{
	"install":     `log install "$@"`,
	"systemctl":   `log systemctl "$@"`,
	"systemd-run": `log systemd-run "$@"`,
	"uname":       `echo x86_64`,
	"curl": `log curl "$@"
for out; do :; done
while [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done
case $out in
*uv.whl) if [ "$CURL_BAD_UV" = 1 ]; then echo tampered >"$out"; else printf 'stub uv wheel\n' >"$out"; fi ;;
*pip.whl) printf 'stub pip wheel\n' >"$out" ;;
esac`,
	"python3": `case "$*" in
"-m venv --without-pip "*) log python3 "$@"; mkdir -p "$4/bin"; cp "$STUBS/venv-python" "$4/bin/python" ;;
"-m zipfile -e "*uv.whl*) mkdir -p "$5/uv-0.0.0.data/scripts"; cp "$STUBS/uv-binary" "$5/uv-0.0.0.data/scripts/uv" ;;
"-m zipfile -e "*pip.whl*) mkdir -p "$5/pip" ;;
-c*) echo "$PYVER" ;;
*) log python3 "$@"; exit 1 ;;
esac`,
	"venv-python": `case "$*" in
*/pip/pip\ install*) log pip "$@"; fails PIP ;;
*importlib.metadata*) echo "$WANT_VERSION" ;;
*) log python "$@"; exit 1 ;;
esac`,
	"uv-binary": `log uv "$@"; case "$*" in "pip check"*) exit 0 ;; esac; fails UV`,
	"apt-get":   `log apt-get "$@"; case "$*" in *install*) fails APT && cp "$STUBS/curl-stub" "$STUBS/curl" ;; esac`,
}

// setupStubLib is sourced by every stub.
const setupStubLib = `log() { n=$1; shift; echo "$n $*" | sed -e "s|$MLSTACK_SETUP_VENV|VENV|g" -e "s|$MLSTACK_SETUP_LOCK|LOCK|g" -e "s|$WORKDIR/\.mlstack-setup\.[A-Za-z0-9]*|WORK|g" >>"$CALLS"; }
fails() { eval "n=\${${1}_FAILS:-0}"; [ "$n" = all ] && exit 1; c=$(cat "$STUBS/$1.count" 2>/dev/null || echo 0); echo $((c + 1)) >"$STUBS/$1.count"; [ "$c" -ge "$n" ]; }
`

type setupCase struct {
	name             string
	version, python  string
	env              map[string]string // UV_FAILS etc.
	noCurl, wantOK   bool
	want, notWant    []string // in the calls log
	wantOut, notOut  []string // in the script's output
	wantDropIn       bool
	installedVersion string // what the venv reports; default version
}

// TestSetupScriptInstallPaths runs mlstack-setup.sh with stubs for the
// commands it runs (real awk, grep and sha256sum: the lock's own format and
// hashes are checked for real) and the lock's x86_64 part, whose installer
// hashes are rewritten to the stub wheels'. The real install is what
// scripts/boot-test.sh boots.
func TestSetupScriptInstallPaths(t *testing.T) {
	t.Parallel()
	locked := "--require-hashes --no-deps -r LOCK"
	uvInstall := "uv pip install --python VENV/bin/python --no-cache --link-mode copy --no-build "
	pipInstall := "pip WORK/pip/pip install --no-cache-dir --disable-pip-version-check --retries 10 --timeout 60 --only-binary :all: "
	// cryptography for mlstack_keys.py's TLS, psycopg2-binary for --db postgres.
	pins := func(v string) string { return "mlflow[auth]==" + v + " boto3 cryptography psycopg2-binary" }
	for _, tc := range []setupCase{
		{name: "locked with uv", wantOK: true,
			want: []string{"python3 -m venv --without-pip VENV", uvInstall + locked, "uv pip check --python VENV/bin/python", "systemctl enable --now mlflow.service mlstack-backup.timer",
				"systemd-run --unit=mlstack-bytecode --description=mlstack: compile MLflow's bytecode --nice=19 -p IOSchedulingClass=idle -p RemainAfterExit=yes --no-block --quiet sh -c",
				`exec "$1/bin/python" -m compileall -q -j 0 "$1/lib" sh VENV`},
			notWant: []string{"pip WORK", "apt-get", pins(DefaultMLflowVersion)},
			wantOut: []string{"from the lock (sha256-checked) with uv", "installed with uv", "installed MLflow " + DefaultMLflowVersion}},
		{name: "tampered uv wheel", env: map[string]string{"CURL_BAD_UV": "1"}, wantOK: true,
			want:    []string{pipInstall + locked, "systemctl enable --now mlflow.service mlstack-backup.timer"},
			notWant: []string{"uv pip install"},
			wantOut: []string{"FAILED", "uv failed; installing with pip instead", "installed with pip"}},
		{name: "uv fails", env: map[string]string{"UV_FAILS": "all"}, wantOK: true,
			want:    []string{uvInstall + locked, pipInstall + locked, "systemctl enable --now mlflow.service mlstack-backup.timer"},
			wantOut: []string{"uv failed; installing with pip instead", "installed with pip"}},
		{name: "PyPI hiccup: both fail once", env: map[string]string{"UV_FAILS": "1", "PIP_FAILS": "1"}, wantOK: true,
			want:    []string{uvInstall + locked, "systemctl enable --now mlflow.service mlstack-backup.timer"},
			wantOut: []string{"pip failed too (attempt 1/3)", "installed with uv"}},
		{name: "both always fail", env: map[string]string{"UV_FAILS": "all", "PIP_FAILS": "all"},
			notWant: []string{"systemctl"},
			wantOut: []string{"pip failed too (attempt 2/3)", "giving up"}},
		{name: "other MLflow version", version: "3.16.1", installedVersion: "3.16.1", wantOK: true, wantDropIn: true,
			want:    []string{uvInstall + pins("3.16.1"), "systemctl enable --now mlflow.service mlstack-backup.timer"},
			notWant: []string{"--require-hashes", "uv pip check"},
			wantOut: []string{"MLflow 3.16.1 is not the locked " + DefaultMLflowVersion + ": installing it by version pins, without hash checks", "starts it with `mlflow server`"}},
		{name: "Python the lock lacks", python: "3.14", wantOK: true,
			want:    []string{uvInstall + pins(DefaultMLflowVersion)},
			notWant: []string{"--require-hashes"},
			wantOut: []string{"the lock has no wheels for Python 3.14 on x86_64"}},
		{name: "no curl, apt busy once", noCurl: true, env: map[string]string{"APT_FAILS": "1"}, wantOK: true,
			want:    []string{"apt-get -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=5 update", "install --no-install-recommends curl ca-certificates", uvInstall + locked},
			wantOut: []string{"no curl: installing it with apt", "apt-get failed (attempt 1/5)"}},
		{name: "no curl, apt always fails", noCurl: true, env: map[string]string{"APT_FAILS": "all"},
			notWant: []string{"uv pip install", "systemctl"},
			wantOut: []string{"apt-get failed (attempt 4/5)"}},
		{name: "bad version", version: "3.17.2; rm -rf /", notWant: []string{"python3", "curl"}, wantOut: []string{"bad MLflow version"}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSetupCase(t, tc) })
	}
}

func runSetupCase(t *testing.T, tc setupCase) {
	sh := needTool(t, "sh")
	dir := t.TempDir()
	stubs, tools, venv := filepath.Join(dir, "stubs"), filepath.Join(dir, "tools"), filepath.Join(dir, "opt", "mlflow")
	lock, calls, units := filepath.Join(dir, "lock.txt"), filepath.Join(dir, "calls"), filepath.Join(dir, "units")
	for _, d := range []string{stubs, tools, filepath.Dir(venv), units} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeSetupStubs(t, stubs, tc.noCurl)
	linkTools(t, tools)
	if err := os.WriteFile(lock, []byte(stubLock(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := templates.FS.ReadFile("mlstack-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "mlstack-setup")
	if err := os.WriteFile(script, src, 0o755); err != nil {
		t.Fatal(err)
	}
	version := orDefault(tc.version, DefaultMLflowVersion)
	cmd := exec.Command(sh, script, version)
	cmd.Env = []string{
		"PATH=" + stubs + ":" + tools, "STUBS=" + stubs, "CALLS=" + calls, "WORKDIR=" + filepath.Dir(venv),
		"MLSTACK_SETUP_VENV=" + venv, "MLSTACK_SETUP_LOCK=" + lock, "MLSTACK_SETUP_UNIT_DIR=" + units, "MLSTACK_SETUP_DELAY=0",
		"PYVER=" + orDefault(tc.python, "3.12"), "WANT_VERSION=" + orDefault(tc.installedVersion, DefaultMLflowVersion),
	}
	for k, v := range tc.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if (err == nil) != tc.wantOK {
		t.Fatalf("exit: %v, want ok=%v\n%s", err, tc.wantOK, out)
	}
	log, err := os.ReadFile(calls)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // no file: the script ran no stub
		t.Fatal(err)
	}
	checkContains(t, "call", string(log), tc.want, tc.notWant)
	checkContains(t, "output", string(out), tc.wantOut, tc.notOut)
	dropIn, err := os.ReadFile(filepath.Join(units, "mlflow.service.d", "mlflow-server-cli.conf"))
	if (err == nil) != tc.wantDropIn {
		t.Errorf("drop-in present: %v, want %v", err == nil, tc.wantDropIn)
	}
	if tc.wantDropIn && !strings.Contains(string(dropIn), "ExecStart=\nExecStart=/opt/mlflow/bin/mlflow server --app-name basic-auth") {
		t.Errorf("the drop-in does not replace ExecStart with mlflow server:\n%s", dropIn)
	}
	// The store's URI holds the database password with --db postgres: it
	// must come from the environment (store.env overrides this default).
	if tc.wantDropIn && (strings.Contains(string(dropIn), "store-uri") ||
		!hasLine(string(dropIn), "Environment=MLFLOW_BACKEND_STORE_URI=sqlite:////var/lib/mlflow/mlflow.db")) {
		t.Errorf("the drop-in puts the store on the command line or not in MLFLOW_BACKEND_STORE_URI:\n%s", dropIn)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(venv), ".mlstack-setup.*")); len(matches) > 0 {
		t.Errorf("the work directory was left behind: %v", matches)
	}
}

func writeSetupStubs(t *testing.T, dir string, noCurl bool) {
	t.Helper()
	for name, body := range setupStubs {
		if name == "curl" {
			name = "curl-stub"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n. \"$STUBS/lib.sh\"\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lib.sh"), []byte(setupStubLib), 0o644); err != nil {
		t.Fatal(err)
	}
	if !noCurl {
		if err := os.Link(filepath.Join(dir, "curl-stub"), filepath.Join(dir, "curl")); err != nil {
			t.Fatal(err)
		}
	}
}

// linkTools gives the script the real tools it may use, and nothing else
// (a real curl or apt-get must not be found).
func linkTools(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"sh", "awk", "grep", "tr", "sed", "cat", "mkdir", "mktemp", "dirname", "rm", "mv", "cp", "chmod", "sha256sum", "sleep"} {
		path := needTool(t, name)
		if err := os.Symlink(path, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// stubLock is the lock's x86_64 part with the installers' hashes replaced by
// the stub wheels'.
func stubLock(t *testing.T) string {
	t.Helper()
	text, err := lockFor(ArchX8664)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for name, content := range map[string]string{"uv x86_64": stubUVWheel, "pip any": stubPipWheel} {
		re := regexp.MustCompile(`(?m)^#@ ` + name + ` [0-9a-f]{64} `)
		if !re.MatchString(text) {
			t.Fatalf("the lock has no #@ %s line", name)
		}
		text = re.ReplaceAllString(text, "#@ "+name+" "+sum(content)+" ")
	}
	return text
}

func checkContains(t *testing.T, what, text string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("no %s %q in:\n%s", what, w, text)
		}
	}
	for _, w := range notWant {
		if strings.Contains(text, w) {
			t.Errorf("unexpected %s %q in:\n%s", what, w, text)
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
