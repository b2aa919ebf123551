package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// keySaver records the keys ensureUser saves, or fails with err.
type keySaver struct {
	ids, secrets []string
	err          error
}

func (k *keySaver) save(id, secret string) error {
	if k.err != nil {
		return k.err
	}
	k.ids, k.secrets = append(k.ids, id), append(k.secrets, secret)
	return nil
}

// userInput is ensureUser's input for the stack user, knowing the secret
// of key known ("" for none) and saving new keys with saver.
func userInput(n cloud.Names, known string, saver *keySaver) cloud.EnsureUserInput {
	log, _ := bufProgress()
	return cloud.EnsureUserInput{
		Names: n, Policy: cloud.BucketPolicy("aws", n.Bucket), Tags: cloudfake.StackTagsFor(n.Stack, time.Now()),
		KnownKey: known, SaveKey: saver.save, Log: log,
	}
}

func TestEnsureUserNew(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	saver := &keySaver{}
	in := userInput(n, "", saver)
	u, err := cloud.FindUser(ctx, f, n, in.Policy)
	if err != nil || u.Exists {
		t.Fatalf("findUser = %+v, %v", u, err)
	}
	if got := texts(u.Plan(n, true)); !slices.Equal(got, []string{"create IAM user mlstack-demo with a bucket-only policy and one access key"}) {
		t.Errorf("plan %q", got)
	}
	if err := cloud.EnsureUser(ctx, f, u, in); err != nil {
		t.Fatal(err)
	}
	if got := f.Mutating(); !slices.Equal(got, []string{"IAM.CreateUser", "IAM.PutUserPolicy", "IAM.CreateAccessKey"}) {
		t.Errorf("mutating calls %v", got)
	}
	fu := f.Users[n.User]
	if len(fu.Keys) != 1 || !slices.Equal(saver.ids, []string{fu.Keys[0].ID}) || !slices.Equal(saver.secrets, []string{fu.Keys[0].Secret}) {
		t.Errorf("keys %+v, saved %v", fu.Keys, saver.ids)
	}
	if cloud.IAMTagMap(fu.User.Tags)[cloud.TagStack] != "demo" || aws.ToString(fu.User.Path) != "/mlstack/" {
		t.Errorf("user %+v", fu.User)
	}
	again, err := cloud.FindUser(ctx, f, n, in.Policy)
	if err != nil || !again.Exists || !again.PolicyOK || len(again.Keys) != 1 || len(again.Plan(n, true)) != 0 {
		t.Errorf("after ensure: %+v, %v", again, err)
	}
}

// mustFindUser is findUser as a setup step: its error fails the test where
// it happened, not as a nil user inside the code under test.
func mustFindUser(t *testing.T, f *cloudfake.FakeAWS, n cloud.Names, policy string) *cloud.UserFound {
	t.Helper()
	u, err := cloud.FindUser(f.Ctx(), f, n, policy)
	must(t, err)
	return u
}

func TestEnsureUserKeys(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	policy := cloud.BucketPolicy("aws", n.Bucket)

	t.Run("known key and strays", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		fu := f.AddUser(n.User, tags, time.Now(), time.Now())
		fu.Policies[n.Policy] = policy
		known, stray := fu.Keys[0].ID, fu.Keys[1].ID
		in := userInput(n, known, &keySaver{})
		u, err := cloud.FindUser(ctx, f, n, policy)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Plan(n, true)) != 0 {
			t.Errorf("plan %q", u.Plan(n, true))
		}
		if err := cloud.EnsureUser(ctx, f, u, in); err != nil {
			t.Fatal(err)
		}
		if got := f.KeyIDs(n.User); !slices.Equal(got, []string{known}) {
			t.Errorf("keys %v, want only %s (stray %s deleted)", got, known, stray)
		}
		if got := f.Mutating(); !slices.Equal(got, []string{"IAM.DeleteAccessKey"}) {
			t.Errorf("mutating calls %v", got)
		}
		// A stray key that went meanwhile is fine; another error is not.
		f.AddKey(fu, time.Now())
		f.FailNext("DeleteAccessKey", cloudfake.AwsErr("NoSuchEntity"), 1)
		u = mustFindUser(t, f, n, policy)
		if err := cloud.EnsureUser(ctx, f, u, in); err != nil {
			t.Errorf("stray gone meanwhile: %v", err)
		}
		f.FailNext("DeleteAccessKey", cloudfake.AwsErr("AccessDenied"), 1)
		u = mustFindUser(t, f, n, policy)
		if err := cloud.EnsureUser(ctx, f, u, in); err == nil || !strings.Contains(err.Error(), "deleting stray access key") {
			t.Errorf("stray cannot go: %v", err)
		}
	})

	t.Run("keys without a known secret", func(t *testing.T) {
		for _, known := range []string{"", "AKIAGONE"} {
			f := newInstalledFake(t)
			ctx := f.Ctx()
			fu := f.AddUser(n.User, tags, time.Now())
			fu.Policies[n.Policy] = policy
			in := userInput(n, known, &keySaver{})
			u := mustFindUser(t, f, n, policy)
			err := cloud.EnsureUser(ctx, f, u, in)
			if err == nil || !strings.Contains(err.Error(), "but no secret for it in the local state") || !strings.Contains(err.Error(), fu.Keys[0].ID) {
				t.Errorf("known %q: %v", known, err)
			}
			if len(f.Mutating()) != 0 {
				t.Errorf("mutating calls %v", f.Mutating())
			}
		}
	})

	t.Run("no key yet", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.AddUser(n.User, tags).Policies[n.Policy] = `{"Version":"2012-10-17","Statement":[]}`
		saver := &keySaver{}
		in := userInput(n, "", saver)
		u := mustFindUser(t, f, n, policy)
		if got := texts(u.Plan(n, true)); !slices.Equal(got, []string{"set the bucket-only policy of IAM user mlstack-demo", "create an access key for mlstack-demo"}) {
			t.Errorf("plan %q", got)
		}
		if err := cloud.EnsureUser(ctx, f, u, in); err != nil {
			t.Fatal(err)
		}
		if got := f.Mutating(); !slices.Equal(got, []string{"IAM.PutUserPolicy", "IAM.CreateAccessKey"}) || len(saver.ids) != 1 {
			t.Errorf("mutating calls %v, saved %v", got, saver.ids)
		}
	})

	t.Run("save fails", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.AddUser(n.User, tags).Policies[n.Policy] = policy
		in := userInput(n, "", &keySaver{err: errors.New("disk full")})
		u := mustFindUser(t, f, n, policy)
		err := cloud.EnsureUser(ctx, f, u, in)
		if err == nil || !strings.Contains(err.Error(), "saving access key of mlstack-demo: disk full (removing the unsaved key: <nil>)") {
			t.Fatalf("ensureUser = %v", err)
		}
		if got := f.KeyIDs(n.User); len(got) != 0 {
			t.Errorf("unsaved key kept: %v", got)
		}
	})
}

func TestDeleteRetryStrays(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	policy := cloud.BucketPolicy("aws", n.Bucket)
	cases := []struct {
		name   string
		age    time.Duration // of the key already there
		kept   bool
		noDate bool
	}{
		{"made by a retried request", 30 * time.Second, false, false},
		{"made at the same moment", 0, false, false},
		{"older: someone else's", time.Hour, true, false},
		{"our key has no date", 30 * time.Second, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			ctx := f.Ctx()
			// Our look found no key; meanwhile a lost CreateAccessKey made one.
			fu := f.AddUser(n.User, tags, time.Now().UTC().Add(-c.age))
			fu.Policies[n.Policy] = policy
			before := fu.Keys[0].ID
			saver := &keySaver{}
			in := userInput(n, "", saver)
			var api cloud.UserAPI = f
			if c.noDate {
				api = undatedKeys{f}
			}
			if err := cloud.EnsureUser(ctx, api, &cloud.UserFound{Exists: true, PolicyOK: true}, in); err != nil {
				t.Fatal(err)
			}
			got := f.KeyIDs(n.User)
			if len(saver.ids) != 1 || !slices.Contains(got, saver.ids[0]) {
				t.Fatalf("our key %v not kept: %v", saver.ids, got)
			}
			if slices.Contains(got, before) != c.kept {
				t.Errorf("key %s kept = %v, want %v (keys %v)", before, !c.kept, c.kept, got)
			}
		})
	}

	t.Run("listing fails", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.AddUser(n.User, tags).Policies[n.Policy] = policy
		f.FailNext("ListAccessKeys", cloudfake.AwsErr("Throttling"), 1)
		in := userInput(n, "", &keySaver{})
		if err := cloud.EnsureUser(ctx, f, &cloud.UserFound{Exists: true, PolicyOK: true}, in); err == nil || !strings.Contains(err.Error(), "listing access keys") {
			t.Errorf("ensureUser = %v", err)
		}
	})
	t.Run("stray cannot be deleted", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.AddUser(n.User, tags, time.Now()).Policies[n.Policy] = policy
		f.FailNext("DeleteAccessKey", cloudfake.AwsErr("AccessDenied"), 1)
		in := userInput(n, "", &keySaver{})
		if err := cloud.EnsureUser(ctx, f, &cloud.UserFound{Exists: true, PolicyOK: true}, in); err == nil || !strings.Contains(err.Error(), "deleting stray access key") {
			t.Errorf("ensureUser = %v", err)
		}
	})
}

// undatedKeys answers CreateAccessKey without a creation date.
type undatedKeys struct{ *cloudfake.FakeAWS }

func (u undatedKeys) CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, o ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	out, err := u.FakeAWS.CreateAccessKey(ctx, in, o...)
	if out != nil {
		out.AccessKey.CreateDate = nil
	}
	return out, err
}

func TestEnsureUserPropagationAndRaces(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)

	t.Run("NoSuchEntity retried", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailNext("PutUserPolicy", cloudfake.AwsErr("NoSuchEntity"), 2)
		f.FailNext("CreateAccessKey", cloudfake.AwsErr("NoSuchEntity"), 3)
		saver := &keySaver{}
		in := userInput(n, "", saver)
		if err := cloud.EnsureUser(ctx, f, &cloud.UserFound{}, in); err != nil {
			t.Fatal(err)
		}
		if f.Count("IAM.PutUserPolicy") != 3 || f.Count("IAM.CreateAccessKey") != 4 || len(saver.ids) != 1 {
			t.Errorf("calls %v", f.Calls())
		}
	})

	t.Run("NoSuchEntity until the deadline", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailNext("PutUserPolicy", cloudfake.AwsErr("NoSuchEntity"), -1)
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		in := userInput(n, "", &keySaver{})
		err := cloud.EnsureUser(ctx, f, &cloud.UserFound{}, in)
		if err == nil || !strings.Contains(err.Error(), "setting policy of IAM user") {
			t.Fatalf("ensureUser = %v", err)
		}
	})

	t.Run("other errors are not retried", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailNext("CreateAccessKey", cloudfake.AwsErr("LimitExceeded"), 1)
		in := userInput(n, "", &keySaver{})
		err := cloud.EnsureUser(ctx, f, &cloud.UserFound{}, in)
		if err == nil || !strings.Contains(err.Error(), "creating access key for mlstack-demo") || f.Count("IAM.CreateAccessKey") != 1 {
			t.Fatalf("ensureUser = %v", err)
		}
	})

	t.Run("made meanwhile by another run", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailAfter("CreateUser", cloudfake.AwsErr("EntityAlreadyExists"), 1)
		in := userInput(n, "", &keySaver{})
		if err := cloud.EnsureUser(ctx, f, &cloud.UserFound{}, in); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("made meanwhile by someone else", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.AddUser(n.User, nil)
		in := userInput(n, "", &keySaver{})
		err := cloud.EnsureUser(ctx, f, &cloud.UserFound{}, in)
		var no *cloud.NotOwnedError
		if !errors.As(err, &no) || no.Kind != "IAM user" {
			t.Fatalf("ensureUser = %v", err)
		}
		if got := f.Mutating(); !slices.Equal(got, []string{"IAM.CreateUser"}) {
			t.Errorf("mutating calls %v", got)
		}
	})

	t.Run("CreateUser fails", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailNext("CreateUser", cloudfake.AwsErr("LimitExceeded"), 1)
		in := userInput(n, "", &keySaver{})
		if err := cloud.EnsureUser(ctx, f, &cloud.UserFound{}, in); err == nil || !strings.Contains(err.Error(), "creating IAM user") {
			t.Fatalf("ensureUser = %v", err)
		}
	})
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())

	f := cloudfake.NewFakeAWS()
	fu := f.AddUser(n.User, tags, time.Now(), time.Now())
	fu.Policies["mlstack-bucket"], fu.Policies["extra"] = "{}", "{}"
	log, out := bufProgress()
	if err := deleteKind(ctx, f, n, cloud.KindUser, log); err != nil {
		t.Fatal(err)
	}
	want := []string{"IAM.DeleteAccessKey", "IAM.DeleteAccessKey", "IAM.DeleteUserPolicy", "IAM.DeleteUserPolicy", "IAM.DeleteUser"}
	if got := f.Mutating(); !slices.Equal(got, want) || f.Users[n.User] != nil {
		t.Errorf("mutating calls %v", got)
	}
	if !strings.Contains(out.String(), "deleting IAM user mlstack-demo") {
		t.Errorf("progress %s", out)
	}
	// Gone already: done.
	if err := deleteKind(ctx, f, n, cloud.KindUser, log); err != nil {
		t.Errorf("second delete: %v", err)
	}

	// Not ours: left alone.
	f = cloudfake.NewFakeAWS()
	f.AddUser(n.User, cloudfake.StackTagsFor("other", time.Now()), time.Now())
	log, out = bufProgress()
	if err := deleteKind(ctx, f, n, cloud.KindUser, log); err != nil || len(f.Mutating()) != 0 || !strings.Contains(out.String(), "leaving IAM user mlstack-demo alone") {
		t.Errorf("foreign user: %v, %v, %s", err, f.Mutating(), out)
	}

	// A deletion answering NoSuchEntity (done meanwhile) is done.
	for _, op := range []string{"DeleteAccessKey", "DeleteUserPolicy", "DeleteUser"} {
		f = cloudfake.NewFakeAWS()
		f.AddUser(n.User, tags, time.Now()).Policies["p"] = "{}"
		f.FailAfter(op, cloudfake.AwsErr("NoSuchEntity"), 1)
		if err := deleteKind(ctx, f, n, cloud.KindUser, log); err != nil || f.Users[n.User] != nil {
			t.Errorf("%s answering NoSuchEntity: %v", op, err)
		}
	}
	// The user went meanwhile: listing its keys or policies says so.
	for _, op := range []string{"ListAccessKeys", "ListUserPolicies"} {
		f = cloudfake.NewFakeAWS()
		f.AddUser(n.User, tags)
		f.FailNext(op, cloudfake.AwsErr("NoSuchEntity"), 1)
		if err := deleteKind(ctx, f, n, cloud.KindUser, log); err != nil || f.Users[n.User] != nil {
			t.Errorf("%s answering NoSuchEntity: %v", op, err)
		}
	}
	for _, c := range []struct{ op, want string }{
		{"GetUser", "reading IAM user"},
		{"DeleteAccessKey", "deleting access key of"},
		{"ListUserPolicies", "listing policies of"},
		{"DeleteUserPolicy", "deleting policy p of"},
		{"DeleteUser", "deleting IAM user"},
	} {
		f = cloudfake.NewFakeAWS()
		f.AddUser(n.User, tags, time.Now()).Policies["p"] = "{}"
		f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
		if err := deleteKind(ctx, f, n, cloud.KindUser, log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
	f = cloudfake.NewFakeAWS()
	f.AddUser(n.User, tags, time.Now())
	f.FailNext("ListAccessKeys", cloudfake.AwsErr("Throttling"), 1)
	if err := deleteKind(ctx, f, n, cloud.KindUser, log); err == nil || !strings.Contains(err.Error(), "listing access keys") {
		t.Errorf("ListAccessKeys failing: %v", err)
	}
}

// ---- role and instance profile ----

func TestEnsureRole(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	policy := cloud.BucketPolicy("aws", n.Bucket)
	cases := []struct {
		name     string
		seed     func(f *cloudfake.FakeAWS)
		plan     []string
		mutating []string
	}{
		{"from nothing", func(f *cloudfake.FakeAWS) {},
			[]string{"create IAM role mlstack-demo-server", "create instance profile mlstack-demo-server", "put role mlstack-demo-server into instance profile mlstack-demo-server"},
			[]string{"IAM.CreateRole", "IAM.PutRolePolicy", "IAM.CreateInstanceProfile", "IAM.AddRoleToInstanceProfile"}},
		{"complete", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags).Policies[n.Policy] = policy
			f.AddProfile(n.Profile, tags, n.Role)
		}, nil, nil},
		{"drifted policy", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags).Policies[n.Policy] = cloud.BucketPolicy("aws", "some-other-bucket")
			f.AddProfile(n.Profile, tags, n.Role)
		}, []string{"set the bucket-only policy of IAM role mlstack-demo-server"}, []string{"IAM.PutRolePolicy"}},
		{"policy missing", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags)
			f.AddProfile(n.Profile, tags, n.Role)
		}, []string{"set the bucket-only policy of IAM role mlstack-demo-server"}, []string{"IAM.PutRolePolicy"}},
		{"empty profile", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags).Policies[n.Policy] = policy
			f.AddProfile(n.Profile, tags)
		}, []string{"put role mlstack-demo-server into instance profile mlstack-demo-server"}, []string{"IAM.AddRoleToInstanceProfile"}},
		{"no profile", func(f *cloudfake.FakeAWS) {
			f.AddRole(n.Role, tags).Policies[n.Policy] = policy
		}, []string{"create instance profile mlstack-demo-server", "put role mlstack-demo-server into instance profile mlstack-demo-server"},
			[]string{"IAM.CreateInstanceProfile", "IAM.AddRoleToInstanceProfile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			ctx := f.Ctx()
			c.seed(f)
			r, err := cloud.FindRole(ctx, f, n, policy)
			if err != nil {
				t.Fatal(err)
			}
			if got := texts(r.Plan(n)); !slices.Equal(got, c.plan) {
				t.Errorf("plan %q, want %q", got, c.plan)
			}
			log, _ := bufProgress()
			if err := cloud.EnsureRole(ctx, f, r, n, policy, tags, log); err != nil {
				t.Fatal(err)
			}
			if got := f.Mutating(); !slices.Equal(got, c.mutating) {
				t.Errorf("mutating calls %v, want %v", got, c.mutating)
			}
			again, err := cloud.FindRole(ctx, f, n, policy)
			if err != nil || !again.RoleExists || !again.PolicyOK || !again.ProfileExists || !again.RoleInProf {
				t.Errorf("after ensure %+v %v", again, err)
			}
			fr := f.Roles[n.Role]
			if !cloud.SamePolicy(aws.ToString(fr.Role.AssumeRolePolicyDocument), cloud.EC2TrustPolicy("eu-west-3")) && c.name == "from nothing" {
				t.Errorf("trust policy %s", aws.ToString(fr.Role.AssumeRolePolicyDocument))
			}
		})
	}
}

func TestEnsureRoleRacesAndErrors(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	policy := cloud.BucketPolicy("aws", n.Bucket)
	log, _ := bufProgress()

	t.Run("adopts what another run made", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailAfter("CreateRole", cloudfake.AwsErr("EntityAlreadyExists"), 1)
		f.FailAfter("CreateInstanceProfile", cloudfake.AwsErr("EntityAlreadyExists"), 1)
		if err := cloud.EnsureRole(ctx, f, &cloud.RoleFound{}, n, policy, tags, log); err != nil {
			t.Fatal(err)
		}
		if got := f.Profiles[n.Profile].Roles; !slices.Equal(got, []string{n.Role}) {
			t.Errorf("profile holds %v", got)
		}
	})
	t.Run("refuses what someone else made", func(t *testing.T) {
		for _, seed := range []func(f *cloudfake.FakeAWS){
			func(f *cloudfake.FakeAWS) { f.AddRole(n.Role, nil) },
			func(f *cloudfake.FakeAWS) { f.AddProfile(n.Profile, cloudfake.StackTagsFor("other", time.Now())) },
		} {
			f := newInstalledFake(t)
			ctx := f.Ctx()
			seed(f)
			err := cloud.EnsureRole(ctx, f, &cloud.RoleFound{}, n, policy, tags, log)
			var no *cloud.NotOwnedError
			if !errors.As(err, &no) {
				t.Errorf("ensureRole = %v", err)
			}
		}
	})
	t.Run("our role already in the profile", func(t *testing.T) {
		// An earlier attempt landed, its answer was lost, the retry is refused.
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailAfter("AddRoleToInstanceProfile", cloudfake.AwsErr("LimitExceeded"), 1)
		if err := cloud.EnsureRole(ctx, f, &cloud.RoleFound{}, n, policy, tags, log); err != nil {
			t.Errorf("LimitExceeded: %v", err)
		}
	})
	t.Run("another role got into the profile", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.AddProfile(n.Profile, tags, "intruder")
		f.FailNext("AddRoleToInstanceProfile", cloudfake.AwsErr("LimitExceeded"), 1)
		err := cloud.EnsureRole(ctx, f, &cloud.RoleFound{RoleExists: true, PolicyOK: true, ProfileExists: true}, n, policy, tags, log)
		var d *cloud.DriftError
		if !errors.As(err, &d) || !strings.Contains(err.Error(), "holds role intruder") {
			t.Errorf("ensureRole = %v", err)
		}
	})
	t.Run("propagation retried", func(t *testing.T) {
		f := newInstalledFake(t)
		ctx := f.Ctx()
		f.FailNext("PutRolePolicy", cloudfake.AwsErr("NoSuchEntity"), 2)
		f.FailNext("AddRoleToInstanceProfile", cloudfake.AwsErr("NoSuchEntity"), 2)
		if err := cloud.EnsureRole(ctx, f, &cloud.RoleFound{}, n, policy, tags, log); err != nil {
			t.Fatal(err)
		}
		if f.Count("IAM.PutRolePolicy") != 3 || f.Count("IAM.AddRoleToInstanceProfile") != 3 {
			t.Errorf("calls %v", f.Calls())
		}
	})
	for _, c := range []struct{ op, want string }{
		{"CreateRole", "creating IAM role mlstack-demo-server"},
		{"PutRolePolicy", "setting policy of IAM role"},
		{"CreateInstanceProfile", "creating instance profile"},
		{"AddRoleToInstanceProfile", "adding role mlstack-demo-server to instance profile"},
	} {
		t.Run(c.op+" fails", func(t *testing.T) {
			f := newInstalledFake(t)
			ctx := f.Ctx()
			f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
			if err := cloud.EnsureRole(ctx, f, &cloud.RoleFound{}, n, policy, tags, log); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ensureRole = %v", err)
			}
		})
	}
	for _, c := range []struct{ op, want string }{
		{"GetRole", "reading IAM role"},
		{"GetRolePolicy", "reading policy of IAM role"},
		{"GetInstanceProfile", "reading instance profile"},
	} {
		t.Run(c.op+" fails", func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
			ctx := f.Ctx()
			f.AddRole(n.Role, tags)
			f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
			if _, err := cloud.FindRole(ctx, f, n, policy); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("findRole = %v", err)
			}
		})
	}
}

func TestDeleteRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	seed := func(f *cloudfake.FakeAWS) {
		r := f.AddRole(n.Role, tags)
		r.Policies[n.Policy] = "{}"
		r.Attached = []string{"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"}
		f.AddProfile(n.Profile, tags, n.Role)
	}

	t.Run("profile first, managed policies detached", func(t *testing.T) {
		f := cloudfake.NewFakeAWS()
		seed(f)
		log, out := bufProgress()
		if err := deleteKind(ctx, f, n, cloud.KindRole, log); err != nil {
			t.Fatal(err)
		}
		want := []string{"IAM.RemoveRoleFromInstanceProfile", "IAM.DeleteInstanceProfile", "IAM.DeleteRolePolicy",
			"IAM.DetachRolePolicy", "IAM.DetachRolePolicy", "IAM.DeleteRole"}
		if got := f.Mutating(); !slices.Equal(got, want) {
			t.Errorf("mutating calls %v, want %v", got, want)
		}
		if f.Roles[n.Role] != nil || f.Profiles[n.Profile] != nil {
			t.Error("role or profile left")
		}
		if !strings.Contains(out.String(), "deleting instance profile") || !strings.Contains(out.String(), "deleting IAM role") {
			t.Errorf("progress %s", out)
		}
		if err := deleteKind(ctx, f, n, cloud.KindRole, log); err != nil || len(f.Mutating()) != len(want) {
			t.Errorf("second delete: %v, %v", err, f.Mutating())
		}
	})

	t.Run("ambiguous removal that happened", func(t *testing.T) {
		// The role left the profile but the answer was a 500 (a lost
		// response retried): re-reading the profile shows it did happen.
		f := cloudfake.NewFakeAWS()
		seed(f)
		f.FailAfter("RemoveRoleFromInstanceProfile", cloudfake.AwsErr("InternalFailure"), 1)
		log, _ := bufProgress()
		if err := deleteKind(ctx, f, n, cloud.KindRole, log); err != nil {
			t.Fatalf("deleteRole = %v", err)
		}
		if f.Roles[n.Role] != nil || f.Profiles[n.Profile] != nil {
			t.Error("role or profile left")
		}
	})

	t.Run("removal that did not happen", func(t *testing.T) {
		f := cloudfake.NewFakeAWS()
		seed(f)
		f.FailNext("RemoveRoleFromInstanceProfile", cloudfake.AwsErr("InternalFailure"), 1)
		log, _ := bufProgress()
		err := deleteKind(ctx, f, n, cloud.KindRole, log)
		if err == nil || !strings.Contains(err.Error(), "removing role from instance profile") {
			t.Fatalf("deleteRole = %v", err)
		}
		if f.Roles[n.Role] == nil || f.Profiles[n.Profile] == nil {
			t.Error("deleted after a failed removal")
		}
	})

	t.Run("profile gone while removing", func(t *testing.T) {
		// Another run deleted the profile while our removal failed.
		f := cloudfake.NewFakeAWS()
		seed(f)
		f.FailIf("RemoveRoleFromInstanceProfile", cloudfake.AwsErr("InternalFailure"), 1, false, func(any) bool {
			delete(f.Profiles, n.Profile) // the matcher runs under the fake's lock
			return true
		})
		log, _ := bufProgress()
		if err := deleteKind(ctx, f, n, cloud.KindRole, log); err != nil {
			t.Fatalf("deleteRole = %v", err)
		}
	})

	t.Run("not ours", func(t *testing.T) {
		f := cloudfake.NewFakeAWS()
		f.AddRole(n.Role, nil)
		f.AddProfile(n.Profile, cloudfake.StackTagsFor("other", time.Now()))
		log, out := bufProgress()
		if err := deleteKind(ctx, f, n, cloud.KindRole, log); err != nil || len(f.Mutating()) != 0 {
			t.Fatalf("deleteRole = %v, %v", err, f.Mutating())
		}
		if !strings.Contains(out.String(), "leaving instance profile mlstack-demo-server alone") || !strings.Contains(out.String(), "leaving IAM role mlstack-demo-server alone") {
			t.Errorf("progress %s", out)
		}
	})

	for _, c := range []struct{ op, want string }{
		{"GetInstanceProfile", "reading instance profile"},
		{"DeleteInstanceProfile", "deleting instance profile"},
		{"GetRole", "reading IAM role"},
		{"ListRolePolicies", "listing policies of IAM role"},
		{"DeleteRolePolicy", "deleting policy mlstack-bucket of IAM role"},
		{"ListAttachedRolePolicies", "listing attached policies"},
		{"DetachRolePolicy", "detaching policy from IAM role"},
		{"DeleteRole", "deleting IAM role"},
	} {
		t.Run(c.op+" fails", func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
			seed(f)
			f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
			log, _ := bufProgress()
			if err := deleteKind(ctx, f, n, cloud.KindRole, log); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("deleteRole = %v", err)
			}
		})
	}
	// A deletion whose answer is NoSuchEntity (done meanwhile, or by our
	// own retried request) is done.
	for _, op := range []string{"RemoveRoleFromInstanceProfile", "DeleteInstanceProfile", "DeleteRolePolicy", "DetachRolePolicy", "DeleteRole"} {
		t.Run(op+" answers NoSuchEntity", func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
			seed(f)
			f.FailAfter(op, cloudfake.AwsErr("NoSuchEntity"), 1)
			log, _ := bufProgress()
			if err := deleteKind(ctx, f, n, cloud.KindRole, log); err != nil {
				t.Errorf("deleteRole = %v", err)
			}
			if f.Roles[n.Role] != nil || f.Profiles[n.Profile] != nil {
				t.Error("role or profile left")
			}
		})
	}
}

// TestAccessKeyAnswersLostTwice: CreateAccessKey's answer is lost twice
// (the keys are made, the SDK tries again) and the third try meets AWS's
// limit of two keys: the two nobody can use go, and the key up saves is the
// only one.
func TestAccessKeyAnswersLostTwice(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.FailAfter("CreateAccessKey", cloudfake.AwsErr("NoSuchEntity"), 2)
	dir := t.TempDir()
	o, _, log := upOpts(dir, "demo")
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	keys := f.Users["mlstack-demo"].Keys
	if len(keys) != 1 || keys[0].ID != savedSecrets(t, dir, "demo").AccessKeyID {
		t.Errorf("keys %v, saved %s", keys, savedSecrets(t, dir, "demo").AccessKeyID)
	}
}
