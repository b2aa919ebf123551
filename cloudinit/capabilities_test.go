package cloudinit

import (
	"slices"
	"testing"
)

// TestCapabilityLine: the rendered user-data says its MLflow version and
// what its bootstrap can do in one line ReadBootstrap reads back; a
// document without the line reads as not ok.
func TestCapabilityLine(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"", "3.16.1"} {
		ud, err := Render(Params{Stack: "demo", Bucket: "mlstack-demo-bucket", Region: "eu-west-3", AdminUsername: "admin", MLflowVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		info, ok := ReadBootstrap(ud)
		want := version
		if want == "" {
			want = DefaultMLflowVersion
		}
		if !ok || info.MLflowVersion != want || !slices.Equal(info.Capabilities, capabilities) {
			t.Errorf("MLflow %q: read back %+v, %v", version, info, ok)
		}
		if !info.Can(CapTLS) || info.Can("teleport") {
			t.Errorf("Can: %+v", info)
		}
	}
	if _, ok := ReadBootstrap([]byte("#cloud-config\n# mlstack stack demo\n")); ok {
		t.Error("a document without the line reads as having one")
	}
}
