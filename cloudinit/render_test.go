package cloudinit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/cloud-config.golden (and fail: review the diff)")

// TestRenderGolden pins the whole rendered user-data, and by itself proves
// nothing: -update rewrites the file, and a rewritten golden file passes.
// What the user-data must do is proven by behaviour tests, which stay:
// contents_test.go (files, owners, modes, the unit's key lines, ExecStart,
// runcmd), secrets_test.go (secrets survive YAML, configparser and systemd,
// and sit only in the two 0600 files), schema_test.go (cloud-init's
// schema), setup_script_test.go and allowedhosts_test.go (the scripts run),
// shellcheck_test.go, sshkeys_test.go, size_test.go, server_smoke_test.go
// (the real MLflow server started from this rendering: auth, allowed
// hosts, artifact root, no secret in its log), and scripts/boot-test.sh,
// which boots it under real cloud-init and systemd.
//
// The golden file is there to be read. A reviewer of a diff of
// testdata/cloud-config.golden must read what no behaviour test pins:
//   - the unit's hardening and restart policy: NoNewPrivileges, PrivateTmp,
//     ProtectSystem, ProtectHome, UMask=0077, StartLimitIntervalSec=0,
//     TimeoutStartSec (a dropped line weakens the server and no test fails);
//   - the mlflow user (system, nologin shell, locked password), the swap size,
//     package_update and the package list;
//   - a new write_files entry: its owner, permissions and defer, and that
//     it holds no secret (only basic_auth.ini and mlflow.env may);
//   - every changed line of the two scripts, above all what they log:
//     no set -x, no secret, no variable that could hold one.
//
// With -update the test rewrites the file and fails, so that a run with it
// is never taken for a check: read `git diff cloudinit/testdata`, then run
// the tests without -update.
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	got := render(t, validParams())
	golden := filepath.Join("testdata", "cloud-config.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("rewrote %s: this run checked nothing. Read `git diff cloudinit/%s` for what TestRenderGolden's comment lists, then run without -update", golden, golden)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cloudinit -run TestRenderGolden -update to create it, then read it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered user-data differs from %s; run go test ./cloudinit -run TestRenderGolden -update and read the diff "+
			"for what this test's comment lists\n--- got ---\n%s", golden, got)
	}
}

func TestRenderStartsWithCloudConfigHeader(t *testing.T) {
	t.Parallel()
	if got := render(t, validParams()); !bytes.HasPrefix(got, []byte("#cloud-config\n")) {
		t.Errorf("user-data starts with %q", got[:min(len(got), 20)])
	}
}

func TestRenderDefaultsMLflowVersion(t *testing.T) {
	t.Parallel()
	p := validParams()
	p.MLflowVersion = ""
	c := parse(t, render(t, p))
	p.MLflowVersion = DefaultMLflowVersion
	want := setupCmd(t, p)
	if len(c.Runcmd) != 1 || !sameList(c.Runcmd[0], want) {
		t.Errorf("runcmd = %v, want [%v]", c.Runcmd, want)
	}
}
