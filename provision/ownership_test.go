package provision

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestRecordedFirst(t *testing.T) {
	t.Parallel()
	insts := []ec2types.Instance{{InstanceId: aws.String("i-a")}, {InstanceId: aws.String("i-b")}, {InstanceId: aws.String("i-c")}}
	ids := func(is []ec2types.Instance) string {
		var s []string
		for _, i := range is {
			s = append(s, aws.ToString(i.InstanceId))
		}
		return strings.Join(s, ",")
	}
	for id, want := range map[string]string{"i-c": "i-c,i-a,i-b", "i-a": "i-a,i-b,i-c", "": "i-a,i-b,i-c", "i-gone": "i-a,i-b,i-c"} {
		if got := ids(recordedFirst(slices.Clone(insts), id)); got != want {
			t.Errorf("recordedFirst(%s) = %s, want %s", id, got, want)
		}
	}
}

func TestIAMDrift(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	policy := cloud.BucketPolicy("aws", n.Bucket)
	cases := []struct {
		name  string
		drift func(f *cloudfake.FakeAWS)
		want  string
	}{
		{"user: another inline policy", func(f *cloudfake.FakeAWS) { f.Users[n.User].Policies["admin"] = `{}` }, "IAM user mlstack-demo has inline policy admin"},
		{"user: a managed policy", func(f *cloudfake.FakeAWS) {
			f.Users[n.User].Attached = append(f.Users[n.User].Attached, "arn:aws:iam::aws:policy/AdministratorAccess")
		}, "detach-user-policy --user-name mlstack-demo --policy-arn arn:aws:iam::aws:policy/AdministratorAccess"},
		{"user: a group", func(f *cloudfake.FakeAWS) { f.Users[n.User].Groups = append(f.Users[n.User].Groups, "admins") }, "is a member of group admins"},
		{"role: trust changed", func(f *cloudfake.FakeAWS) {
			f.Roles[n.Role].Role.AssumeRolePolicyDocument = aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`)
		}, "lets other principals than EC2 assume it"},
		{"role: another inline policy", func(f *cloudfake.FakeAWS) { f.Roles[n.Role].Policies["more"] = `{}` }, "IAM role mlstack-demo-server has inline policy more"},
		{"role: a managed policy", func(f *cloudfake.FakeAWS) {
			f.Roles[n.Role].Attached = append(f.Roles[n.Role].Attached, "arn:aws:iam::aws:policy/PowerUserAccess")
		}, "detach-role-policy --role-name mlstack-demo-server"},
		{"profile: another role", func(f *cloudfake.FakeAWS) { f.Profiles[n.Profile].Roles = []string{"intruder"} }, "instance profile mlstack-demo-server holds role intruder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			ctx := f.Ctx()
			dir := upStack(t, f, "demo")
			f.Mu.Lock()
			c.drift(f)
			f.Mu.Unlock()
			f.ResetCalls()
			o, _, _ := upOpts(dir, "demo")
			err := Up(ctx, o)
			var d *cloud.DriftError
			if !errors.As(err, &d) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("up = %v, want drift %q", err, c.want)
			}
			if m := f.Mutating(); len(m) != 0 {
				t.Errorf("mutating calls before refusing: %v", m)
			}
		})
	}
	f := newInstalledFake(t)
	ctx := f.Ctx()
	f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()))
	f.FailNext("ListAttachedUserPolicies", cloudfake.AwsErr("ServiceUnavailable"), 1)
	if _, err := cloud.FindUser(ctx, f, n, policy); err == nil || !cloud.HasCode(err, "ServiceUnavailable") {
		t.Errorf("findUser = %v", err)
	}
}

func TestSweepPicksOwnVouchedStacks(t *testing.T) {
	t.Parallel()
	me, other := cloudfake.FakeOwner, "arn:aws:iam::123456789012:role/ci"
	stacks := []cloud.StackInfo{
		{Stack: "mine", Owner: me},
		{Stack: "theirs", Owner: other},
		{Stack: "legacy"},
		{Stack: "orphan", Orphan: true},
	}
	for _, c := range []struct {
		any  bool
		want string
	}{{false, "mine"}, {true, "mine,theirs,legacy"}} {
		var log bytes.Buffer
		o := DownOptions{All: true, AnyOwner: c.any}
		var got []string
		for _, st := range o.pickStacks(stacks, me, time.Now(), newProgress(&log)) {
			got = append(got, st.Stack)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("any-owner=%v: picked %v, want %s", c.any, got, c.want)
		}
		if !strings.Contains(log.String(), "leaving orphan alone: only EC2 or S3 resources carry its tag") {
			t.Errorf("log:\n%s", &log)
		}
		if !c.any && (!strings.Contains(log.String(), "leaving stack theirs alone: created by "+other) ||
			!strings.Contains(log.String(), "leaving stack legacy alone: created by an unknown principal")) {
			t.Errorf("log:\n%s", &log)
		}
	}
}

func TestUpAsksBeforeWideCIDRs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		yes     bool
		confirm func(string) (bool, error)
		want    string
	}{
		{"no terminal", false, nil, "pass --yes to open it all the same"},
		{"answered no", false, func(string) (bool, error) { return false, nil }, "not confirmed: nothing created or changed"},
		{"cannot ask", false, func(string) (bool, error) { return false, errors.New("tty gone") }, "tty gone"},
		{"answered yes", false, func(string) (bool, error) { return true, nil }, ""},
		{"--yes", true, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			o, _, log := upOpts(t.TempDir(), "demo")
			o.AllowCIDRs, o.Yes = []string{"0.0.0.0/1", "128.0.0.0/1"}, c.yes
			var prompt string
			if c.confirm != nil {
				o.Confirm = func(p string) (bool, error) { prompt = p; return c.confirm(p) }
			}
			err := Up(f.Ctx(), o)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("up = %v, want %q", err, c.want)
			}
			if c.want != "" && (len(f.Calls()) != 0) {
				t.Errorf("calls before refusing: %v", f.Calls())
			}
			what := "--allow-cidr 0.0.0.0/1 128.0.0.0/1 opens the tracking server (tcp 5000) to the whole internet"
			if c.confirm != nil && !strings.HasPrefix(prompt, what) || c.yes && !strings.Contains(log.String(), what) {
				t.Errorf("prompt %q; progress:\n%s", prompt, log)
			}
		})
	}
}

// TestOwnerTagOfEveryPrincipal: whoever runs up — root, an SSO role
// session, a user with a path, with a comma (which IAM, S3, SSM and RDS
// refuse in a tag value), with a very long ARN — the stack is made, every
// resource carries one owner value, and that principal's down and sweep
// count the stack as theirs; a stack tagged with the plain ARN (as earlier
// versions did) still is theirs.
func TestOwnerTagOfEveryPrincipal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, arn string }{
		{"root", "arn:aws:iam::123456789012:root"},
		{"sso", "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jane.doe@example.com"},
		{"path", "arn:aws:iam::123456789012:user/dept/ci/deployer"},
		{"comma", "arn:aws:iam::123456789012:user/a,b"},
		{"long", "arn:aws:iam::123456789012:user/" + strings.Repeat("dept/", 50) + "deployer"},
	} {
		arn := c.arn
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newInstalledFake(t)
			f.SetCaller(arn)
			principal := cloud.PrincipalOf(arn)
			dir := t.TempDir()
			o, _, _ := upOpts(dir, "demo")
			mustUp(t, f, o)
			f.Mu.Lock()
			got := cloud.IAMTagMap(f.Users["mlstack-demo"].User.Tags)["mlstack:owner"]
			f.Mu.Unlock()
			if got != cloud.OwnerTagValue(principal) {
				t.Errorf("owner tag %q, want %q", got, cloud.OwnerTagValue(principal))
			}
			var log bytes.Buffer
			o2 := DownOptions{All: true}
			for _, owner := range []string{got, principal} { // this version's value, an earlier one's
				picked := o2.pickStacks([]cloud.StackInfo{{Stack: "demo", Owner: owner}}, principal, time.Now(), newProgress(&log))
				if len(picked) != 1 {
					t.Errorf("sweep leaves the stack tagged %q alone:\n%s", owner, &log)
				}
			}
			d, _, dlog := downOpts(dir, "demo")
			d.Yes = true
			if err := Down(f.Ctx(), d); err != nil || strings.Contains(dlog.String(), "not by you") {
				t.Errorf("down = %v:\n%s", err, dlog)
			}
		})
	}
}
