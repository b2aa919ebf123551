package cloud_test

import (
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

func TestEnsureRoleCreatesThenLeavesAlone(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	policy := cloud.RolePolicy("aws", cloudfake.FakeAccount, n)
	tags := cloudfake.StackTagsFor("demo", time.Now())

	r, err := cloud.FindRole(ctx, f, n, policy)
	must(t, err)
	if *r != (cloud.RoleFound{}) {
		t.Fatalf("found %+v in an empty account", r)
	}
	var verbs []string
	for _, s := range r.Plan(n) {
		verbs = append(verbs, s.Verb+" "+s.Kind)
	}
	if got := strings.Join(verbs, ", "); got != "create "+cloud.KindRole+", create "+cloud.KindProfile+", put "+cloud.KindProfile {
		t.Errorf("plan %s", got)
	}
	must(t, cloud.EnsureRole(ctx, f, r, n, policy, tags, newProgress(io.Discard)))
	role, prof := f.Roles[n.Role], f.Profiles[n.Profile]
	if role == nil || prof == nil || cloud.IAMTagMap(role.Role.Tags)[cloud.TagStack] != "demo" || cloud.IAMTagMap(prof.Prof.Tags)[cloud.TagStack] != "demo" {
		t.Fatalf("role %+v, profile %+v", role, prof)
	}
	if !cloud.SamePolicy(role.Policies[n.Policy], policy) || !cloud.SamePolicy(*role.Role.AssumeRolePolicyDocument, cloud.EC2TrustPolicy(n.Region)) {
		t.Errorf("policies %v, trust %s", role.Policies, *role.Role.AssumeRolePolicyDocument)
	}
	if len(prof.Roles) != 1 || prof.Roles[0] != n.Role {
		t.Errorf("profile holds %v", prof.Roles)
	}

	r, err = cloud.FindRole(ctx, f, n, policy)
	must(t, err)
	if *r != (cloud.RoleFound{RoleExists: true, PolicyOK: true, ProfileExists: true, RoleInProf: true}) || len(r.Plan(n)) != 0 {
		t.Fatalf("found %+v, plan %+v", r, r.Plan(n))
	}
	f.ResetCalls()
	must(t, cloud.EnsureRole(ctx, f, r, n, policy, tags, newProgress(io.Discard)))
	if len(f.Calls()) != 0 {
		t.Errorf("second ensure called %v", f.Calls())
	}

	// A changed policy is put back, and only that.
	role.Policies[n.Policy] = `{"Version":"2012-10-17","Statement":[]}`
	r, err = cloud.FindRole(ctx, f, n, policy)
	must(t, err)
	if p := r.Plan(n); r.PolicyOK || len(p) != 1 || !strings.Contains(p[0].Text, "set the bucket-only policy of IAM role") {
		t.Errorf("found %+v, plan %+v", r, p)
	}
	f.ResetCalls()
	must(t, cloud.EnsureRole(ctx, f, r, n, policy, tags, newProgress(io.Discard)))
	if m := f.Mutating(); len(m) != 1 || m[0] != "IAM.PutRolePolicy" || !cloud.SamePolicy(role.Policies[n.Policy], policy) {
		t.Errorf("repair called %v", m)
	}
}

func TestFindRoleRefusesLookAlikesAndDrift(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	for _, c := range []struct {
		name      string
		seed      func(f *cloudfake.FakeAWS)
		notOwned  string // the kind refused as not the stack's
		driftWhat string
	}{
		{"untagged role", func(f *cloudfake.FakeAWS) { f.AddRole(n.Role, nil) }, "IAM role", ""},
		{"role of another stack", func(f *cloudfake.FakeAWS) { f.AddRole(n.Role, cloudfake.StackTagsFor("other", time.Now())) }, "IAM role", ""},
		{"untagged profile", func(f *cloudfake.FakeAWS) { f.AddProfile(n.Profile, map[string]string{"team": "ml"}) }, "instance profile", ""},
		{"trust policy changed", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags).Role.AssumeRolePolicyDocument = aws.String(url.QueryEscape(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`))
		}, "", "lets other principals than EC2 assume it"},
		{"another inline policy", func(f *cloudfake.FakeAWS) { f.AddRole(n.Role, tags).Policies["admin"] = "{}" }, "", "has inline policy admin"},
		{"a managed policy", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags).Attached = []string{"arn:aws:iam::aws:policy/AdministratorAccess"}
		}, "", "has managed policy arn:aws:iam::aws:policy/AdministratorAccess attached"},
		{"profile holds another role", func(f *cloudfake.FakeAWS) { f.AddProfile(n.Profile, tags, "intruder") }, "", "holds role intruder"},
	} {
		f := cloudfake.NewFakeAWS()
		c.seed(f)
		_, err := cloud.FindRole(f.Ctx(), f, n, "{}")
		var no *cloud.NotOwnedError
		var d *cloud.DriftError
		switch {
		case c.notOwned != "":
			if !errors.As(err, &no) || no.Kind != c.notOwned || no.Stack != "demo" {
				t.Errorf("%s: %v", c.name, err)
			}
		case !errors.As(err, &d) || !strings.Contains(d.What, c.driftWhat) || d.Fix == "":
			t.Errorf("%s: %v", c.name, err)
		}
	}
	for _, c := range []struct{ op, want string }{
		{"GetRole", "reading IAM role mlstack-demo-server"},
		{"ListRolePolicies", "listing policies of IAM role"},
		{"ListAttachedRolePolicies", "listing attached policies of IAM role"},
		{"GetRolePolicy", "reading policy of IAM role"},
		{"GetInstanceProfile", "reading instance profile mlstack-demo-server"},
	} {
		f := cloudfake.NewFakeAWS()
		f.AddRole(n.Role, tags)
		f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
		if _, err := cloud.FindRole(f.Ctx(), f, n, "{}"); err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "ServiceFailure" {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
}

func TestEnsureRoleConcurrentRuns(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	policy := cloud.RolePolicy("aws", cloudfake.FakeAccount, n)
	tags := cloudfake.StackTagsFor("demo", time.Now())

	// Another run made role, profile and the link since our read: all ours, adopted.
	f := cloudfake.NewFakeAWS()
	f.AddRole(n.Role, tags)
	f.AddProfile(n.Profile, tags, n.Role)
	must(t, cloud.EnsureRole(f.Ctx(), f, &cloud.RoleFound{}, n, policy, tags, newProgress(io.Discard)))
	if len(f.Profiles[n.Profile].Roles) != 1 || !cloud.SamePolicy(f.Roles[n.Role].Policies[n.Policy], policy) {
		t.Errorf("profile %v, policies %v", f.Profiles[n.Profile].Roles, f.Roles[n.Role].Policies)
	}

	// A look-alike role made meanwhile is refused before anything is put on it.
	f = cloudfake.NewFakeAWS()
	f.AddRole(n.Role, nil)
	err := cloud.EnsureRole(f.Ctx(), f, &cloud.RoleFound{}, n, policy, tags, newProgress(io.Discard))
	var no *cloud.NotOwnedError
	if !errors.As(err, &no) || no.Kind != "IAM role" || len(f.Roles[n.Role].Policies) != 0 || f.Profiles[n.Profile] != nil {
		t.Errorf("ensure over a look-alike role: %v", err)
	}

	// The profile made meanwhile holds another role: drift, not adopted.
	f = cloudfake.NewFakeAWS()
	f.AddRole(n.Role, tags)
	f.AddProfile(n.Profile, tags, "intruder")
	err = cloud.EnsureRole(f.Ctx(), f, &cloud.RoleFound{RoleExists: true, PolicyOK: true, ProfileExists: true}, n, policy, tags, newProgress(io.Discard))
	var d *cloud.DriftError
	if !errors.As(err, &d) || d.Kind != "instance profile" {
		t.Errorf("ensure into a profile holding another role: %v", err)
	}
}

func TestEnsureRoleFailures(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct{ op, want string }{
		{"CreateRole", "creating IAM role mlstack-demo-server"},
		{"PutRolePolicy", "setting policy of IAM role mlstack-demo-server"},
		{"CreateInstanceProfile", "creating instance profile mlstack-demo-server"},
		{"AddRoleToInstanceProfile", "adding role mlstack-demo-server to instance profile mlstack-demo-server"},
	} {
		f := cloudfake.NewFakeAWS()
		f.FailNext(c.op, cloudfake.AwsErr("AccessDenied"), 1)
		err := cloud.EnsureRole(f.Ctx(), f, &cloud.RoleFound{}, n, "{}", nil, newProgress(io.Discard))
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "AccessDenied" {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}

	// IAM not showing the new role yet is waited out.
	f := cloudfake.NewFakeAWS()
	f.FailNext("PutRolePolicy", cloudfake.AwsErr("NoSuchEntity"), 2)
	f.FailNext("AddRoleToInstanceProfile", cloudfake.AwsErr("NoSuchEntity"), 2)
	must(t, cloud.EnsureRole(f.Ctx(), f, &cloud.RoleFound{}, n, "{}", nil, newProgress(io.Discard)))
	if f.Count("IAM.PutRolePolicy") != 3 || f.Count("IAM.AddRoleToInstanceProfile") != 3 || len(f.Profiles[n.Profile].Roles) != 1 {
		t.Errorf("calls %v", f.Calls())
	}
}

func TestDeleteRole(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())

	f := cloudfake.NewFakeAWS()
	r := f.AddRole(n.Role, tags)
	r.Policies[n.Policy], r.Policies["extra"] = "{}", "{}"
	r.Attached = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
	f.AddProfile(n.Profile, tags, n.Role)
	must(t, cloud.DeleteRole(f.Ctx(), f, n, true, true, newProgress(io.Discard)))
	if f.Roles[n.Role] != nil || f.Profiles[n.Profile] != nil {
		t.Fatalf("left %v", f.Owns("demo"))
	}
	if f.Count("IAM.DeleteRolePolicy") != 2 || f.Count("IAM.DetachRolePolicy") != 1 || f.Count("IAM.RemoveRoleFromInstanceProfile") != 1 {
		t.Errorf("calls %v", f.Calls())
	}
	// Again: nothing is there, nothing fails.
	must(t, cloud.DeleteRole(f.Ctx(), f, n, true, true, newProgress(io.Discard)))

	// Only what the inventory found the stack's goes.
	f = cloudfake.NewFakeAWS()
	f.AddRole(n.Role, tags)
	f.AddProfile(n.Profile, tags)
	must(t, cloud.DeleteRole(f.Ctx(), f, n, true, false, newProgress(io.Discard)))
	if f.Roles[n.Role] == nil || f.Profiles[n.Profile] != nil {
		t.Errorf("profile only: left %v", f.Owns("demo"))
	}

	// A profile without the stack tag stays, with a warning.
	f = cloudfake.NewFakeAWS()
	f.AddProfile(n.Profile, nil, "someone")
	var log strings.Builder
	must(t, cloud.DeleteRole(f.Ctx(), f, n, true, false, newProgress(&log)))
	if f.Profiles[n.Profile] == nil || len(f.Mutating()) != 0 || !strings.Contains(log.String(), "leaving instance profile mlstack-demo-server alone") {
		t.Errorf("deleted a look-alike profile: %v, log %q", f.Mutating(), log.String())
	}

	// A removal whose answer was lost but which did happen is done.
	f = cloudfake.NewFakeAWS()
	f.AddRole(n.Role, tags)
	f.AddProfile(n.Profile, tags, n.Role)
	f.FailAfter("RemoveRoleFromInstanceProfile", cloudfake.AwsErr("InternalFailure"), 1)
	must(t, cloud.DeleteRole(f.Ctx(), f, n, true, true, newProgress(io.Discard)))
	if f.Profiles[n.Profile] != nil || f.Roles[n.Role] != nil {
		t.Errorf("left %v", f.Owns("demo"))
	}
}

func TestDeleteRoleFailures(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	for _, c := range []struct{ op, want string }{
		{"GetInstanceProfile", "reading instance profile mlstack-demo-server"},
		{"RemoveRoleFromInstanceProfile", "removing role from instance profile mlstack-demo-server"},
		{"DeleteInstanceProfile", "deleting instance profile mlstack-demo-server"},
		{"ListRolePolicies", "listing policies of IAM role mlstack-demo-server"},
		{"DeleteRolePolicy", "deleting policy mlstack-bucket of IAM role mlstack-demo-server"},
		{"ListAttachedRolePolicies", "listing attached policies of IAM role mlstack-demo-server"},
		{"DetachRolePolicy", "detaching policy from IAM role mlstack-demo-server"},
		{"DeleteRole", "deleting IAM role mlstack-demo-server"},
	} {
		f := cloudfake.NewFakeAWS()
		r := f.AddRole(n.Role, tags)
		r.Policies[n.Policy] = "{}"
		r.Attached = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
		f.AddProfile(n.Profile, tags, n.Role)
		// Each call fails for good: a re-read of the profile fails as well.
		f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), -1)
		err := cloud.DeleteRole(f.Ctx(), f, n, true, true, newProgress(io.Discard))
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "ServiceFailure" {
			t.Errorf("%s failing: %v", c.op, err)
		}
		if f.Roles[n.Role] == nil {
			t.Errorf("%s failing: the role went anyway", c.op)
		}
	}
}
