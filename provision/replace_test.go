package provision

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// replaceOpts are up's options that ask for another instance type on a
// live stack and wait for a server at health.
func replaceOpts(t *testing.T, dir string, health int) UpOptions {
	o, _, _ := upOpts(dir, "demo")
	o.InstanceType, o.NoWait, o.hooks.HealthURL, o.Timeout = "t3.micro", false, healthServer(t, health), 3*time.Second
	return o
}

// index is where op is in calls (-1: absent), after position from.
func index(calls []string, op string, from int) int {
	for i := from; i < len(calls); i++ {
		if calls[i] == op {
			return i
		}
	}
	return -1
}

// TestUpReplacesOnDrift: an up that asks for another instance type plans a
// replacement (dry run), asks for it (refused without --yes or with
// --no-wait, nothing changed), and with --yes stops the old instance
// before launching the new one and terminates the old one only after the
// new server answered.
func TestUpReplacesOnDrift(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	old := savedSecrets(t, dir, "demo").InstanceID

	o := replaceOpts(t, dir, http.StatusOK)
	o.DryRun = true
	var out strings.Builder
	o.Out = &out
	mustUp(t, f, o)
	if !strings.Contains(out.String(), "(plan) would replace instance "+old+" (instance type t2.micro → t3.micro): stop it") {
		t.Errorf("dry run:\n%s", out.String())
	}
	for _, tt := range []struct {
		name string
		edit func(*UpOptions)
		want string
	}{
		{"no terminal", func(*UpOptions) {}, "pass --yes to go ahead"},
		{"answered no", func(o *UpOptions) { o.Confirm = func(string) (bool, error) { return false, nil } }, "not confirmed"},
		{"--no-wait", func(o *UpOptions) { o.Yes, o.NoWait = true, true }, "leave out --no-wait"},
	} {
		o := replaceOpts(t, dir, http.StatusOK)
		tt.edit(&o)
		f.ResetCalls()
		if err := Up(f.Ctx(), o); !cloud.IsUsage(err) || !strings.Contains(err.Error(), tt.want) || len(f.Mutating()) != 0 {
			t.Errorf("%s: %v, mutating %v", tt.name, err, f.Mutating())
		}
	}

	o = replaceOpts(t, dir, http.StatusOK)
	o.Yes = true
	f.ResetCalls()
	mustUp(t, f, o)
	calls := f.Mutating()
	stop, run := index(calls, "EC2.StopInstances", 0), index(calls, "EC2.RunInstances", 0)
	term := index(calls, "EC2.TerminateInstances", 0)
	if stop < 0 || run < stop || term < run {
		t.Errorf("want stop, launch, terminate in that order: %v", calls)
	}
	live := f.LiveInstances()
	now := savedSecrets(t, dir, "demo").InstanceID
	if len(live) != 1 || live[0] == old || now != live[0] || f.Instance(now).Inst.InstanceType != ec2types.InstanceTypeT3Micro {
		t.Errorf("after the replacement: live %v, state %s (old %s)", live, now, old)
	}
	f.ResetCalls()
	o.Yes = false
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("up after the replacement changed %v", m)
	}
}

// TestUpReplacementRollsBack: when the new server does not answer, the new
// instance goes, the old one starts again, and the state points at it.
func TestUpReplacementRollsBack(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	old := savedSecrets(t, dir, "demo").InstanceID
	o := replaceOpts(t, dir, http.StatusServiceUnavailable)
	o.Yes = true
	err := Up(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "the replacement failed: instance") || !strings.Contains(err.Error(), old+" started again") {
		t.Fatalf("up: %v", err)
	}
	if live := f.LiveInstances(); len(live) != 1 || live[0] != old || cloud.StateOf(&f.Instance(old).Inst) != ec2types.InstanceStateNameRunning {
		t.Errorf("after the rollback: live %v, want %s running", live, old)
	}
	if got := savedSecrets(t, dir, "demo").InstanceID; got != old {
		t.Errorf("state names %s, want %s", got, old)
	}
}

// TestUpDriftOfEarlierBootstraps: another MLflow version in a bootstrap
// that backs up is a replacement, named by the versions; a bootstrap that
// keeps no backups is kept with a warning, or refused when a change was
// asked for: replacing it would lose its runs.
func TestUpDriftOfEarlierBootstraps(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	id := savedSecrets(t, dir, "demo").InstanceID
	// An earlier bootstrap: no capability line, only its paths say what it can do.
	earlier := regexp.MustCompile(`(?m)^# mlstack-bootstrap: .*\n`)
	setUserData := func(edit func(string) string) {
		i := f.Instance(id)
		i.UserData = base64.StdEncoding.EncodeToString([]byte(edit(earlier.ReplaceAllString(cloudfake.UserDataB64Text(t, i.UserData), ""))))
	}
	setUserData(func(s string) string {
		return strings.Replace(s, `mlstack-setup, "3.17.2"`, `mlstack-setup, "3.16.1"`, 1)
	})
	o, out, _ := upOpts(dir, "demo")
	o.DryRun = true
	mustUp(t, f, o)
	if !strings.Contains(out.String(), "(MLflow 3.16.1 → 3.17.2)") {
		t.Errorf("dry run of a version drift:\n%s", out.String())
	}

	setUserData(func(s string) string {
		return strings.ReplaceAll(s, string(cloud.BackupMarker), "/usr/local/lib/mlstack/gone.py")
	})
	o, _, log := upOpts(dir, "demo")
	f.ResetCalls()
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) != 0 || !strings.Contains(log.String(), "keeps no backups: replacing it would lose its runs, so it stays") {
		t.Errorf("an earlier bootstrap without backups: mutating %v\n%s", m, log.String())
	}
	o = replaceOpts(t, dir, http.StatusOK)
	o.Yes = true
	if err := Up(f.Ctx(), o); !cloud.IsUsage(err) || !strings.Contains(err.Error(), "would lose its runs") || slices.Contains(f.Mutating(), "EC2.StopInstances") {
		t.Errorf("an asked-for change of an instance without backups: %v", err)
	}
}
