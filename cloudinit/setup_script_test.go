package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/templates"
)

// TestSetupScriptInstallPaths runs mlstack-setup.sh with stub python3,
// install, systemctl, pip and uv, and checks which installer it uses: uv
// when it works, pip with the same requirements when uv cannot be installed
// or fails, and a failure when pip fails too. The real install is what
// scripts/boot-test.sh boots.
func TestSetupScriptInstallPaths(t *testing.T) {
	sh := needTool(t, "sh")
	src, err := templates.FS.ReadFile("mlstack-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	const req = "mlflow[auth]==" + DefaultMLflowVersion + " boto3"
	tests := []struct {
		name                       string
		uvInstallFails, uvFails    bool
		pipFails                   bool
		wantOK                     bool
		want, notWant, wantStderrs []string
	}{
		{name: "uv works", wantOK: true,
			want:        []string{"pip install --no-cache-dir --disable-pip-version-check --retries 10 --timeout 60 uv==", "uv pip install --python VENV/bin/python --no-cache --link-mode copy --compile-bytecode " + req, "mlflow --version", "systemctl enable --now mlflow.service"},
			notWant:     []string{"pip install --no-cache-dir --disable-pip-version-check --retries 10 --timeout 60 " + req},
			wantStderrs: []string{"installed with uv"}},
		{name: "uv cannot be installed", uvInstallFails: true, wantOK: true,
			want:        []string{"pip install --no-cache-dir --disable-pip-version-check --retries 10 --timeout 60 " + req, "systemctl enable --now mlflow.service"},
			notWant:     []string{"uv pip install"},
			wantStderrs: []string{"uv failed; installing with pip instead"}},
		{name: "uv fails", uvFails: true, wantOK: true,
			want:        []string{"uv pip install --python VENV/bin/python --no-cache --link-mode copy --compile-bytecode " + req, "pip install --no-cache-dir --disable-pip-version-check --retries 10 --timeout 60 " + req, "systemctl enable --now mlflow.service"},
			wantStderrs: []string{"uv failed; installing with pip instead"}},
		{name: "both fail", uvFails: true, pipFails: true, wantOK: false,
			notWant: []string{"systemctl enable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin, venv, calls := filepath.Join(dir, "bin"), filepath.Join(dir, "venv"), filepath.Join(dir, "calls")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			flag := func(b bool) string {
				if b {
					return "1"
				}
				return "0"
			}
			// Each stub logs "name args" to $CALLS.
			stubs := map[string]string{
				"install":   `echo "install $*" >>"$CALLS"`,
				"systemctl": `echo "systemctl $*" >>"$CALLS"`,
				"python3": `echo "python3 $*" >>"$CALLS"
mkdir -p "$MLSTACK_SETUP_VENV/bin"
cp "$STUBS/pip" "$STUBS/mlflow" "$MLSTACK_SETUP_VENV/bin/"`,
				"pip": `echo "pip $*" | sed "s|$MLSTACK_SETUP_VENV|VENV|g" >>"$CALLS"
case "$*" in
*uv==*) [ "$UV_INSTALL_FAILS" = 1 ] && exit 1; cp "$STUBS/uv" "$MLSTACK_SETUP_VENV/bin/uv" ;;
*) [ "$PIP_FAILS" = 1 ] && exit 1 ;;
esac
exit 0`,
				"uv":     `echo "uv $*" | sed "s|$MLSTACK_SETUP_VENV|VENV|g" >>"$CALLS"; [ "$UV_FAILS" = 1 ] && exit 1; exit 0`,
				"mlflow": `echo "mlflow $*" >>"$CALLS"`,
			}
			for name, body := range stubs {
				if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			script := filepath.Join(dir, "mlstack-setup")
			if err := os.WriteFile(script, src, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(sh, script, DefaultMLflowVersion)
			cmd.Env = []string{
				"PATH=" + bin + ":/usr/bin:/bin", "STUBS=" + bin, "CALLS=" + calls, "MLSTACK_SETUP_VENV=" + venv,
				"UV_INSTALL_FAILS=" + flag(tt.uvInstallFails), "UV_FAILS=" + flag(tt.uvFails), "PIP_FAILS=" + flag(tt.pipFails),
			}
			out, err := cmd.CombinedOutput()
			if (err == nil) != tt.wantOK {
				t.Fatalf("exit: %v, want ok=%v\n%s", err, tt.wantOK, out)
			}
			log, err := os.ReadFile(calls) // install -d runs first in every case
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(log), w) {
					t.Errorf("no call %q in:\n%s", w, log)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(log), w) {
					t.Errorf("unexpected call %q in:\n%s", w, log)
				}
			}
			for _, w := range tt.wantStderrs {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
