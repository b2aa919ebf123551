package cloudinit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/cloud-config.golden")

func TestRenderGolden(t *testing.T) {
	got := render(t, validParams())
	golden := filepath.Join("testdata", "cloud-config.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cloudinit -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered user-data differs from %s; review the change, then run go test ./cloudinit -update\n--- got ---\n%s", golden, got)
	}
}

func TestRenderStartsWithCloudConfigHeader(t *testing.T) {
	if got := render(t, validParams()); !bytes.HasPrefix(got, []byte("#cloud-config\n")) {
		t.Errorf("user-data starts with %q", got[:min(len(got), 20)])
	}
}

func TestRenderDefaultsMLflowVersion(t *testing.T) {
	p := validParams()
	p.MLflowVersion = ""
	c := parse(t, render(t, p))
	want := []any{"/usr/local/sbin/mlstack-setup", DefaultMLflowVersion}
	if len(c.Runcmd) != 1 || !sameList(c.Runcmd[0], want) {
		t.Errorf("runcmd = %v, want [%v]", c.Runcmd, want)
	}
}
