package cloud_test

import (
	"slices"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/cloudinit"
)

// TestBootstrapOf: the capability line decides where there is one, whatever
// paths the user-data holds; without one (earlier bootstraps) the paths do.
func TestBootstrapOf(t *testing.T) {
	ud, err := cloudinit.Render(cloudinit.Params{Stack: "demo", Bucket: "mlstack-demo-bucket", Region: "eu-west-3", AdminUsername: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	const line = "# mlstack-bootstrap: mlflow=3.16.1 can=backups\n"
	for _, c := range []struct {
		name    string
		ud      string
		version string
		can     []string
		legacy  bool
	}{
		{"today's", string(ud), cloudinit.DefaultMLflowVersion, []string{cloudinit.CapArtifactsMode, cloudinit.CapBackups, cloudinit.CapTLS}, false},
		{"the line wins over paths", "#cloud-config\n" + line + string(cloud.ModeMarker) + "\n", "3.16.1", []string{cloudinit.CapBackups}, true},
		{"earlier, by its paths", `#cloud-config
runcmd: [[/usr/local/sbin/mlstack-setup, "3.15.0"]]
` + string(cloud.BackupMarker) + "\n", "3.15.0", []string{cloudinit.CapBackups, cloudinit.CapTLS}, false},
		{"earlier, plain HTTP", "#cloud-config\nwrite_files:\n  - " + string(cloud.LegacyMarker) + "\n", "", nil, true},
		{"none", "", "", []string{cloudinit.CapTLS}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cloud.BootstrapOf([]byte(c.ud))
			if got.MLflowVersion != c.version {
				t.Errorf("MLflow %q, want %q", got.MLflowVersion, c.version)
			}
			for _, capability := range []string{cloudinit.CapArtifactsMode, cloudinit.CapBackups, cloudinit.CapTLS} {
				if got.Can(capability) != slices.Contains(c.can, capability) {
					t.Errorf("can %s = %v, want %v (%v)", capability, got.Can(capability), !got.Can(capability), got.Capabilities)
				}
			}
			if cloud.IsLegacyUserData([]byte(c.ud)) != c.legacy {
				t.Errorf("legacy = %v, want %v", !c.legacy, c.legacy)
			}
		})
	}
}
