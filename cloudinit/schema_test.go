package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCloudInitSchema(t *testing.T) {
	t.Parallel()
	ci := needTool(t, "cloud-init")
	variants := map[string]Params{"plain": validParams()}
	p := validParams()
	p.S3EndpointURL = "http://127.0.0.1:9000"
	variants["endpoint"] = p
	p.SSMEndpointURL = "http://127.0.0.1:5000"
	variants["endpoints"] = p
	p = validParams()
	p.MLflowVersion = "3.5.0"
	variants["unlocked version"] = p
	p = validParams()
	p.Database = DatabasePostgres
	variants["postgres"] = p
	for name, p := range variants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "user-data")
			if err := os.WriteFile(f, render(t, p), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(ci, "schema", "--config-file", f).CombinedOutput()
			if err != nil {
				t.Fatalf("cloud-init schema: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Valid cloud-config") {
				t.Errorf("cloud-init schema did not say valid:\n%s", out)
			}
		})
	}
}
