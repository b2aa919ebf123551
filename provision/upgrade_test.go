package provision

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// TestUpgrade: upgrade replaces a server of another MLflow with one of
// the locked version, keeping who may reach it; once there, it changes
// nothing; a stack without its group has nothing to upgrade.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, _, _ := upOpts(dir, "demo")
	o.MLflowVersion = "3.16.1"
	mustUp(t, f, o)
	old := savedSecrets(t, dir, "demo").InstanceID

	ctx := testhooks.With(f.Ctx(), testhooks.Hooks{HealthURL: healthServer(t, http.StatusOK)})
	var log strings.Builder
	up := UpgradeOptions{Stack: o.Stack, Streams: Streams{Log: &log}, Timeout: 5 * time.Second, Yes: true}
	if err := Upgrade(ctx, up); err != nil {
		t.Fatalf("upgrade: %v\n%s", err, log.String())
	}
	live := f.LiveInstances()
	if len(live) != 1 || live[0] == old {
		t.Fatalf("live after the upgrade %v (old %s)", live, old)
	}
	inst := f.Instance(live[0])
	info := cloud.BootstrapOf([]byte(cloudfake.UserDataB64Text(t, inst.UserData)))
	if info.MLflowVersion != cloudinit.DefaultMLflowVersion {
		t.Errorf("the new server runs MLflow %q, want %s", info.MLflowVersion, cloudinit.DefaultMLflowVersion)
	}
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	g, err := cloud.FindSecurityGroup(ctx, f, n)
	must(t, err)
	if got := g.Allowed(); len(got) != 1 || got[0] != testCIDR {
		t.Errorf("who may reach it after the upgrade: %v, want %s", got, testCIDR)
	}

	f.ResetCalls()
	if err := Upgrade(ctx, up); err != nil || len(f.Mutating()) != 0 {
		t.Errorf("a second upgrade: %v, changed %v", err, f.Mutating())
	}

	empty := UpgradeOptions{Stack: Stack{Name: "nothing", StateDir: t.TempDir()}, Yes: true}
	if err := Upgrade(ctx, empty); err == nil || !strings.Contains(err.Error(), "nothing to upgrade") {
		t.Errorf("upgrade of no stack: %v", err)
	}
}
