package provision

import (
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

// envNames are the variables the stack's env file sets.
func envNames(t *testing.T, dir, stack string) []string {
	t.Helper()
	vars, err := local.StackDir(dir, stack).ReadEnv()
	must(t, err)
	var out []string
	for _, v := range vars {
		if !v.Unset {
			out = append(out, v.Name)
		}
	}
	slices.Sort(out)
	return out
}

func hasAWSVar(vars []string) bool {
	return slices.ContainsFunc(vars, func(s string) bool { return strings.HasPrefix(s, "AWS_") })
}

// TestUpArtifactsModes: a proxied stack has no access key anywhere and an
// env file without AWS variables; switching a live stack stores the mode,
// makes or deletes the key and reboots the server once, and pins only
// keys published after the switch; an up without --artifacts keeps the
// mode and changes nothing.
func TestUpArtifactsModes(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	up := func(mode string) string {
		t.Helper()
		o, _, log := upOpts(dir, "demo")
		o.Artifacts = mode
		mustUp(t, f, o)
		return log.String()
	}
	key := func() (string, string) {
		u := f.Users["mlstack-demo"]
		sec := savedSecrets(t, dir, "demo")
		if len(u.Keys) == 0 {
			return "", sec.AccessKeyID
		}
		return u.Keys[0].ID, sec.AccessKeyID
	}

	up(ArtifactsProxied)
	if inAWS, saved := key(); inAWS != "" || saved != "" || f.Params["/mlstack/demo/artifacts"].Value != ArtifactsProxied {
		t.Fatalf("new proxied stack: key %q in IAM, %q saved, mode %q", inAWS, saved, f.Params["/mlstack/demo/artifacts"].Value)
	}
	if vars := envNames(t, dir, "demo"); hasAWSVar(vars) || !slices.Contains(vars, "MLFLOW_TRACKING_PASSWORD") {
		t.Errorf("proxied env file sets %v", vars)
	}
	if f.Reboots != 0 || f.Count("IAM.CreateAccessKey") != 0 {
		t.Errorf("new proxied stack: %d reboots, %d keys made", f.Reboots, f.Count("IAM.CreateAccessKey"))
	}

	f.ResetCalls()
	if log := up(""); len(f.Mutating()) != 0 {
		t.Errorf("up without --artifacts on a proxied stack changed %v\n%s", f.Mutating(), log)
	}

	log := up(ArtifactsDirect)
	inAWS, saved := key()
	if inAWS == "" || inAWS != saved || f.Params["/mlstack/demo/artifacts"].Value != ArtifactsDirect || f.Reboots != 1 {
		t.Fatalf("switch to direct: key %q in IAM, %q saved, %d reboots\n%s", inAWS, saved, f.Reboots, log)
	}
	if vars := envNames(t, dir, "demo"); !slices.Contains(vars, "AWS_ACCESS_KEY_ID") || !slices.Contains(vars, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("direct env file sets %v", vars)
	}
	if !strings.Contains(log, "keep their mlflow-artifacts:/ location") || !strings.Contains(log, "pinned the server's certificate") {
		t.Errorf("switch to direct does not say what happens to experiments, or pinned nothing new:\n%s", log)
	}

	// A server that does not come back: the keys it published before the
	// switch are not taken for the new start's.
	f.SilentServer = true
	log = up(ArtifactsProxied)
	if inAWS, saved := key(); inAWS != "" || saved != "" || f.Reboots != 2 {
		t.Errorf("switch to proxied: key %q in IAM, %q saved, %d reboots", inAWS, saved, f.Reboots)
	}
	if !strings.Contains(log, "the server has not started again since the change") || !strings.Contains(log, "cannot log or download them") {
		t.Errorf("switch to proxied with a silent server:\n%s", log)
	}
	if vars := envNames(t, dir, "demo"); hasAWSVar(vars) {
		t.Errorf("proxied env file sets %v", vars)
	}
}

// TestArtifactsFlagRefused: a mode up does not know is a usage error
// before anything is asked or created.
func TestArtifactsFlagRefused(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	for _, bad := range []string{"Proxied", "s3", "none", " direct"} {
		o, _, _ := upOpts(t.TempDir(), "demo")
		o.Artifacts = bad
		err := Up(f.Ctx(), o)
		if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "use proxied") {
			t.Errorf("--artifacts %q: %v", bad, err)
		}
	}
	if len(f.Calls()) != 0 {
		t.Errorf("a refused --artifacts called AWS: %v", f.Calls())
	}
}
