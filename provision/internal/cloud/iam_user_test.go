package cloud_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// userInput is an EnsureUserInput for the demo stack whose SaveKey records
// the key it is given in *saved.
func userInput(n cloud.Names, saved *[2]string) cloud.EnsureUserInput {
	return cloud.EnsureUserInput{
		Names: n, Policy: cloud.BucketPolicy("aws", n.Bucket), Tags: cloudfake.StackTagsFor(n.Stack, time.Now()),
		SaveKey: func(id, secret string) error { *saved = [2]string{id, secret}; return nil },
		Log:     newProgress(io.Discard),
	}
}

func TestEnsureUserCreatesThenLeavesAlone(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	var saved [2]string
	in := userInput(n, &saved)

	u, err := cloud.FindUser(ctx, f, n, in.Policy)
	must(t, err)
	if u.Exists {
		t.Fatalf("found %+v in an empty account", u)
	}
	if p := u.Plan(n, true); len(p) != 1 || p[0].Verb != "create" || !strings.Contains(p[0].Text, "one access key") {
		t.Errorf("plan %+v", p)
	}
	must(t, cloud.EnsureUser(ctx, f, u, in))
	user := f.Users[n.User]
	if user == nil || cloud.IAMTagMap(user.User.Tags)[cloud.TagStack] != "demo" || *user.User.Path != cloud.IAMPath {
		t.Fatalf("user %+v", user)
	}
	if !cloud.SamePolicy(user.Policies[n.Policy], in.Policy) {
		t.Errorf("policy %q", user.Policies[n.Policy])
	}
	if ids := f.KeyIDs(n.User); len(ids) != 1 || ids[0] != saved[0] || saved[1] != user.Keys[0].Secret {
		t.Errorf("keys %v, saved %v", ids, saved)
	}

	// The second run finds everything in place and changes nothing.
	u, err = cloud.FindUser(ctx, f, n, in.Policy)
	must(t, err)
	if !u.Exists || !u.PolicyOK || len(u.Keys) != 1 {
		t.Fatalf("found %+v", u)
	}
	if p := u.Plan(n, true); len(p) != 0 {
		t.Errorf("plan of a complete user: %+v", p)
	}
	f.ResetCalls()
	in.KnownKey = saved[0]
	must(t, cloud.EnsureUser(ctx, f, u, in))
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("second ensure changed %v", m)
	}
}

func TestUserPlan(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct {
		name    string
		u       cloud.UserFound
		wantKey bool
		want    []string
	}{
		{"missing, proxied", cloud.UserFound{}, false, []string{"create IAM user mlstack-demo with a bucket-only policy and no access key"}},
		{"policy drifted", cloud.UserFound{Exists: true, Keys: []string{"AKIA1"}}, true, []string{"set the bucket-only policy"}},
		{"no key", cloud.UserFound{Exists: true, PolicyOK: true}, true, []string{"create an access key for mlstack-demo"}},
		{"keys while proxied", cloud.UserFound{Exists: true, PolicyOK: true, Keys: []string{"AKIA1", "AKIA2"}}, false,
			[]string{"delete access keys AKIA1, AKIA2 of mlstack-demo"}},
		{"complete, proxied", cloud.UserFound{Exists: true, PolicyOK: true}, false, nil},
	} {
		p := c.u.Plan(n, c.wantKey)
		if len(p) != len(c.want) {
			t.Errorf("%s: plan %+v", c.name, p)
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(p[i].Text, w) || p[i].Kind != cloud.KindUser || p[i].Name != n.User {
				t.Errorf("%s: step %+v, want %q", c.name, p[i], w)
			}
		}
	}
}

func TestEnsureUserKeys(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	old := time.Now().Add(-time.Hour)
	for _, c := range []struct {
		name    string
		keys    int // keys the user has, made an hour ago
		known   int // index of the key the local state knows, -1: none
		noKey   bool
		wantErr string
		// wantLeft: how many keys remain, and whether the known one is among them.
		wantLeft   int
		keepsKnown bool
		forgot     bool
	}{
		{"stray next to the known key", 2, 1, false, "", 1, true, false},
		{"known key alone", 1, 0, false, "", 1, true, false},
		{"keys nobody here can use", 2, -1, false, "has access keys", 2, false, false},
		{"proxied: every key goes", 2, 0, true, "", 0, false, true},
		{"proxied without keys", 0, -1, true, "", 0, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := cloudfake.NewFakeAWS()
			var times []time.Time
			for range c.keys {
				times = append(times, old)
			}
			f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()), times...)
			var saved [2]string
			in := userInput(n, &saved)
			f.Users[n.User].Policies[n.Policy] = in.Policy
			ids := f.KeyIDs(n.User)
			if c.known >= 0 {
				in.KnownKey = ids[c.known]
			}
			forgot := false
			in.NoKey, in.ForgetKey = c.noKey, func() error { forgot = true; return nil }
			u, err := cloud.FindUser(f.Ctx(), f, n, in.Policy)
			must(t, err)
			err = cloud.EnsureUser(f.Ctx(), f, u, in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("ensure = %v, want %q", err, c.wantErr)
				}
			} else {
				must(t, err)
			}
			left := f.KeyIDs(n.User)
			if len(left) != c.wantLeft || (c.keepsKnown && !slices.Contains(left, in.KnownKey)) || forgot != c.forgot {
				t.Errorf("keys left %v (known %q), forgot %v", left, in.KnownKey, forgot)
			}
			if f.Count("IAM.CreateAccessKey") != 0 || saved[0] != "" {
				t.Errorf("made a key: %v", f.Calls())
			}
		})
	}
}

func TestEnsureUserAdoptsOnlyItsOwnConcurrentUser(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)

	// Another run made the user between our read and our create: it is ours,
	// so we carry on with its policy and key.
	f := cloudfake.NewFakeAWS()
	f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()))
	var saved [2]string
	must(t, cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{}, userInput(n, &saved)))
	if len(f.Users[n.User].Policies) != 1 || len(f.KeyIDs(n.User)) != 1 || saved[0] == "" {
		t.Errorf("user %+v, saved %v", f.Users[n.User], saved)
	}

	// A look-alike without the stack tag is refused, and left as it was.
	f = cloudfake.NewFakeAWS()
	f.AddUser(n.User, map[string]string{"team": "ml"})
	err := cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{}, userInput(n, &saved))
	var no *cloud.NotOwnedError
	if !errors.As(err, &no) || no.Kind != "IAM user" || no.Name != n.User {
		t.Fatalf("ensure over a look-alike = %v", err)
	}
	if m := f.Mutating(); len(m) != 1 || m[0] != "IAM.CreateUser" || len(f.Users[n.User].Policies) != 0 {
		t.Errorf("touched the look-alike: %v", m)
	}
}

func TestEnsureUserFailures(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct{ op, code, want string }{
		{"CreateUser", "AccessDenied", "creating IAM user mlstack-demo"},
		{"PutUserPolicy", "AccessDenied", "setting policy of IAM user mlstack-demo"},
		{"CreateAccessKey", "AccessDenied", "creating access key for mlstack-demo"},
		{"ListAccessKeys", "ServiceFailure", "listing access keys of mlstack-demo"},
	} {
		f := cloudfake.NewFakeAWS()
		var saved [2]string
		f.FailNext(c.op, cloudfake.AwsErr(c.code), 1)
		err := cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{}, userInput(n, &saved))
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != c.code {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}

	// A user IAM does not show yet (NoSuchEntity right after CreateUser) is
	// waited for, not failed on.
	f := cloudfake.NewFakeAWS()
	var saved [2]string
	f.FailNext("PutUserPolicy", cloudfake.AwsErr("NoSuchEntity"), 2)
	f.FailNext("CreateAccessKey", cloudfake.AwsErr("NoSuchEntity"), 2)
	must(t, cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{}, userInput(n, &saved)))
	if f.Count("IAM.PutUserPolicy") != 3 || f.Count("IAM.CreateAccessKey") != 3 || len(f.KeyIDs(n.User)) != 1 {
		t.Errorf("calls %v", f.Calls())
	}
}

func TestEnsureUserUnsavedKeyIsRemoved(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	var saved [2]string
	in := userInput(n, &saved)
	in.SaveKey = func(string, string) error { return errors.New("disk full") }
	err := cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{}, in)
	if err == nil || !strings.Contains(err.Error(), "saving access key of mlstack-demo: disk full") {
		t.Fatalf("ensure = %v", err)
	}
	if ids := f.KeyIDs(n.User); len(ids) != 0 || f.Count("IAM.DeleteAccessKey") != 1 {
		t.Errorf("the unsaved key stayed: %v", ids)
	}
}

func TestEnsureUserRemovesKeysOfLostAnswers(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)

	// The first CreateAccessKey made a key whose answer was lost; the retry
	// made ours. The lost one's secret was never seen: it goes.
	f := cloudfake.NewFakeAWS()
	f.FailAfter("CreateAccessKey", cloudfake.AwsErr("NoSuchEntity"), 1)
	var saved [2]string
	must(t, cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{}, userInput(n, &saved)))
	if ids := f.KeyIDs(n.User); len(ids) != 1 || ids[0] != saved[0] || f.Count("IAM.DeleteAccessKey") != 1 {
		t.Errorf("keys %v, saved %v, calls %v", ids, saved, f.Calls())
	}

	// Two lost answers used up the quota: they go, and one more try makes ours.
	f = cloudfake.NewFakeAWS()
	now := time.Now().UTC()
	f.AddUser(n.User, cloudfake.StackTagsFor("demo", now), now.Add(-time.Second), now)
	lost := f.KeyIDs(n.User)
	saved = [2]string{}
	must(t, cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{Exists: true, PolicyOK: true}, userInput(n, &saved)))
	ids := f.KeyIDs(n.User)
	if len(ids) != 1 || ids[0] != saved[0] || slices.Contains(lost, ids[0]) {
		t.Errorf("keys %v, lost %v, saved %v", ids, lost, saved)
	}

	// An hour-old key is someone's: only the recent lost one goes, and ours
	// is made beside the old one.
	f = cloudfake.NewFakeAWS()
	f.AddUser(n.User, cloudfake.StackTagsFor("demo", now), now.Add(-time.Hour), now)
	oldKey := f.KeyIDs(n.User)[0]
	saved = [2]string{}
	must(t, cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{Exists: true, PolicyOK: true}, userInput(n, &saved)))
	if ids := f.KeyIDs(n.User); len(ids) != 2 || ids[0] != oldKey || ids[1] != saved[0] {
		t.Errorf("keys %v, old %s, saved %v", ids, oldKey, saved)
	}

	// The quota is used up and the listing fails: the error says so.
	f = cloudfake.NewFakeAWS()
	f.AddUser(n.User, cloudfake.StackTagsFor("demo", now), now, now)
	f.FailNext("ListAccessKeys", cloudfake.AwsErr("ServiceFailure"), 1)
	err := cloud.EnsureUser(f.Ctx(), f, &cloud.UserFound{Exists: true, PolicyOK: true}, userInput(n, &saved))
	if err == nil || !strings.Contains(err.Error(), "listing access keys") || cloud.ErrorCode(err) != "ServiceFailure" {
		t.Errorf("ensure = %v", err)
	}
}

func TestFindUserRefusesDrift(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct {
		name string
		edit func(f *cloudfake.FakeAWS)
		want string
	}{
		{"another inline policy", func(f *cloudfake.FakeAWS) { f.Users[n.User].Policies["admin"] = "{}" }, "has inline policy admin"},
		{"a managed policy", func(f *cloudfake.FakeAWS) {
			f.Users[n.User].Attached = []string{"arn:aws:iam::aws:policy/AdministratorAccess"}
		}, "has managed policy arn:aws:iam::aws:policy/AdministratorAccess attached"},
		{"a group", func(f *cloudfake.FakeAWS) { f.Users[n.User].Groups = []string{"admins"} }, "is a member of group admins"},
	} {
		f := cloudfake.NewFakeAWS()
		f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()))
		c.edit(f)
		_, err := cloud.FindUser(f.Ctx(), f, n, "{}")
		var d *cloud.DriftError
		if !errors.As(err, &d) || d.Kind != "IAM user" || d.Name != n.User || !strings.Contains(d.What, c.want) || d.Fix == "" {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	for _, op := range []string{"ListUserPolicies", "ListAttachedUserPolicies", "ListGroupsForUser"} {
		f := cloudfake.NewFakeAWS()
		f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()))
		f.FailNext(op, cloudfake.AwsErr("ServiceFailure"), 1)
		if _, err := cloud.FindUser(f.Ctx(), f, n, "{}"); cloud.ErrorCode(err) != "ServiceFailure" {
			t.Errorf("%s failing: %v", op, err)
		}
	}
	f := cloudfake.NewFakeAWS()
	f.AddUser(n.User, nil)
	var no *cloud.NotOwnedError
	if _, err := cloud.FindUser(f.Ctx(), f, n, "{}"); !errors.As(err, &no) {
		t.Errorf("untagged user: %v", err)
	}
	if u, err := cloud.FindUserFrom(f.Ctx(), f, n, "{}", nil); err != nil || u.Exists {
		t.Errorf("no user: %+v %v", u, err)
	}
}

func TestDeleteUserRemovesWhatTiesItDown(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	u := f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()), time.Now(), time.Now())
	u.Policies[n.Policy], u.Policies["extra"] = "{}", "{}"
	u.Attached = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
	u.Groups = []string{"admins", "ops"}
	u.Login = true
	must(t, cloud.DeleteUser(f.Ctx(), f, n, newProgress(io.Discard)))
	if f.Users[n.User] != nil {
		t.Fatal("user left")
	}
	for op, want := range map[string]int{
		"IAM.DeleteAccessKey": 2, "IAM.DeleteUserPolicy": 2, "IAM.DetachUserPolicy": 1,
		"IAM.RemoveUserFromGroup": 2, "IAM.DeleteLoginProfile": 1, "IAM.DeleteUser": 1,
	} {
		if got := f.Count(op); got != want {
			t.Errorf("%s called %d times, want %d", op, got, want)
		}
	}

	// Deleting it again (or a user that never was) is done, not an error.
	f.ResetCalls()
	must(t, cloud.DeleteUser(f.Ctx(), f, n, newProgress(io.Discard)))
	if m := f.Mutating(); len(m) != 1 || m[0] != "IAM.DeleteUser" {
		t.Errorf("delete of nothing: %v", m)
	}
}

func TestDeleteUserFailures(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct{ op, want string }{
		{"ListAccessKeys", "listing access keys of mlstack-demo"},
		{"DeleteAccessKey", "deleting access key of mlstack-demo"},
		{"ListUserPolicies", "listing policies of mlstack-demo"},
		{"DeleteUserPolicy", "deleting policy mlstack-bucket of mlstack-demo"},
		{"ListAttachedUserPolicies", "listing attached policies of mlstack-demo"},
		{"DetachUserPolicy", "detaching policy arn:aws:iam::aws:policy/ReadOnlyAccess from mlstack-demo"},
		{"ListGroupsForUser", "listing groups of mlstack-demo"},
		{"RemoveUserFromGroup", "removing mlstack-demo from group admins"},
		{"GetLoginProfile", "reading the console login of mlstack-demo"},
		{"DeleteLoginProfile", "deleting the console login of mlstack-demo"},
		{"DeleteUser", "deleting IAM user mlstack-demo"},
	} {
		f := cloudfake.NewFakeAWS()
		u := f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()), time.Now())
		u.Policies[n.Policy] = "{}"
		u.Attached = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
		u.Groups = []string{"admins"}
		u.Login = true
		f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
		err := cloud.DeleteUser(f.Ctx(), f, n, newProgress(io.Discard))
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "ServiceFailure" {
			t.Errorf("%s failing: %v", c.op, err)
		}
		if f.Users[n.User] == nil {
			t.Errorf("%s failing: the user went anyway", c.op)
		}
	}
}
