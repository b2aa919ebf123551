package main

// Ownership that cannot be forged, through the CLI against moto: a tagged
// look-alike instance, forged expiry tags, the wrong region, other
// principals' stacks, drift of the stack's IAM side and key pair, and wide
// CIDRs. Each test ends with the leak check, the victim's resources intact
// until the test itself removes them.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/crypto/ssh"
)

// principal is a set of credentials mlstack can run with.
type principal struct {
	arn, key, secret, token string
}

// as runs mlstack with p's credentials in the environment.
func (e *env) as(p principal, args ...string) result {
	e.t.Helper()
	e.t.Setenv("AWS_ACCESS_KEY_ID", p.key)
	e.t.Setenv("AWS_SECRET_ACCESS_KEY", p.secret)
	e.t.Setenv("AWS_SESSION_TOKEN", p.token)
	defer func() {
		e.t.Setenv("AWS_ACCESS_KEY_ID", "test")
		e.t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		e.t.Setenv("AWS_SESSION_TOKEN", "")
	}()
	return e.mlstack(args...)
}

// stsAs is an STS client of moto with the given credentials.
func (e *env) stsAs(key, secret, token string) *sts.Client {
	e.t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, secret, token)))
	must(e.t, err)
	cfg.BaseEndpoint = aws.String(e.moto)
	return sts.NewFromConfig(cfg)
}

// admin is the test's default principal, as STS names it.
func (e *env) admin() principal {
	e.t.Helper()
	id, err := e.stsAs("test", "test", "").GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	must(e.t, err)
	return principal{arn: aws.ToString(id.Arn), key: "test", secret: "test"}
}

// colleague makes an IAM user with an access key: a second principal.
func (e *env) colleague(name string) principal {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	must(e.t, err)
	k, err := e.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	must(e.t, err)
	return principal{arn: "arn:aws:iam::123456789012:user/" + name,
		key: aws.ToString(k.AccessKey.AccessKeyId), secret: aws.ToString(k.AccessKey.SecretAccessKey)}
}

// removeColleague deletes what colleague made.
func (e *env) removeColleague(p principal, name string) {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(name), AccessKeyId: aws.String(p.key)})
	must(e.t, err)
	_, err = e.iam.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(name)})
	must(e.t, err)
}

// lookalike launches, as an attacker with EC2 rights only would, an
// instance tagged for stack from Canonical's image with the stack's key
// pair name, but without the stack's instance profile.
func (e *env) lookalike(stack, image string) string {
	e.t.Helper()
	out, err := e.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT2Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		KeyName: aws.String("mlstack-" + stack),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String("mlstack:stack"), Value: aws.String(stack)}, {Key: aws.String("Name"), Value: aws.String("mlstack-" + stack)},
		}}},
	})
	must(e.t, err)
	return aws.ToString(out.Instances[0].InstanceId)
}

func (e *env) terminate(id string) {
	e.t.Helper()
	_, err := e.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	must(e.t, err)
}

func (e *env) instanceState(id string) string {
	e.t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	must(e.t, err)
	return string(out.Reservations[0].Instances[0].State.Name)
}

func envFileURI(t *testing.T, dir, stack string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, stack, "env"))
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "export MLFLOW_TRACKING_URI="); ok {
			return strings.Trim(v, "'")
		}
	}
	t.Fatalf("no tracking URI in the env file:\n%s", b)
	return ""
}

// TestTaggedLookalikeInstance: an instance anyone could launch and tag
// (Canonical's image, the stack's key pair name, mlstack:stack=victim) is
// never taken for the stack's: up refuses before changing anything, the
// tracking URI stays, status, creds rotate and down ignore it.
func TestTaggedLookalikeInstance(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("victim")
	up := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)
	e.ok(up...)
	own := stackInstance(t, e, "victim")
	ownID, uri := aws.ToString(own.InstanceId), envFileURI(t, e.stateDir, "victim")
	resources := len(e.ls()[0].Resources)

	// First the look-alike alone: a fresh stack's up refuses it, creating nothing.
	early := e.lookalike("early", aws.ToString(own.ImageId))
	before := e.everything()
	e.rec.reset()
	res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("early")...)...)
	if res.code == 0 || !strings.Contains(res.stderr, "instance "+early+" is tagged mlstack:stack=early, but it does not run with the stack's instance profile") {
		t.Fatalf("up beside an early look-alike: exit %d\n%s", res.code, res.stderr)
	}
	if m := e.rec.mutating(); len(m) != 0 {
		t.Errorf("mutating calls before refusing: %v", m)
	}
	if after := e.everything(); strings.Join(before, "|") != strings.Join(after, "|") {
		t.Errorf("refused up changed resources:\nbefore %v\nafter  %v", before, after)
	}
	e.terminate(early)

	// Then beside the live stack.
	fake := e.lookalike("victim", aws.ToString(own.ImageId))
	e.rec.reset()
	res = e.mlstack(up...)
	if res.code == 0 || !strings.Contains(res.stderr, "instance "+fake+" is tagged mlstack:stack=victim") || len(e.rec.mutating()) != 0 {
		t.Fatalf("up beside a look-alike: exit %d, mutating %v\n%s", res.code, e.rec.mutating(), res.stderr)
	}
	if got := envFileURI(t, e.stateDir, "victim"); got != uri {
		t.Errorf("tracking URI moved to %s (was %s)", got, uri)
	}
	var st struct {
		TrackingURI string `json:"tracking_uri"`
		Resources   []struct{ Kind, Name string }
	}
	must(t, json.Unmarshal([]byte(e.ok(append([]string{"status", "--output", "json"}, flags...)...).stdout), &st))
	status := e.ok(append([]string{"status"}, flags...)...)
	if st.TrackingURI != uri || strings.Contains(status.stdout, fake) || !strings.Contains(status.stderr, "instance "+fake+" is tagged mlstack:stack=victim, but") {
		t.Errorf("status and the look-alike: %+v\n%s\n%s", st, status.stdout, status.stderr)
	}
	ls := e.ls()
	if len(ls) != 1 || ls[0].TrackingURI == nil || *ls[0].TrackingURI != uri || len(ls[0].Resources) != resources {
		t.Errorf("ls counts or shows the look-alike: %+v (want %s, %d resources)", ls, uri, resources)
	}
	// creds rotate (without a server here) rewrites the env file with the stack's own address.
	e.ok(append([]string{"creds", "rotate", "--skip-mlflow"}, flags...)...)
	if got := envFileURI(t, e.stateDir, "victim"); got != uri {
		t.Errorf("creds rotate moved the tracking URI to %s", got)
	}
	plan := e.ok(append([]string{"down", "--dry-run"}, flags...)...).stdout
	if !strings.Contains(plan, "would delete instance mlstack-victim ("+ownID+")") || !strings.Contains(plan, "would leave instance "+fake+" alone") {
		t.Errorf("down plan:\n%s", plan)
	}
	res = e.ok(append([]string{"down", "--yes"}, flags...)...)
	if !strings.Contains(res.stderr, "leaving instance "+fake+" alone") || e.instanceState(fake) != "running" {
		t.Errorf("down and the look-alike (%s):\n%s", e.instanceState(fake), res.stderr)
	}
	e.terminate(fake)
	e.assertNothingLeft()
}

// TestForgedExpiryTags: EC2 tags anyone can set (an expired key pair tagged
// for victim2, expiry tags on victim2's own instance, group and key pair, a
// key pair of a stack that does not exist) make no stack expire: an admin's
// hourly `down --expired` leaves victim2 whole.
func TestForgedExpiryTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	flags := e.stackFlags("victim2")
	e.ok(append([]string{"up", "--no-wait", "--ttl", "4h", "--allow-cidr", allowCIDR}, flags...)...)
	inst := stackInstance(t, e, "victim2")
	past := []ec2types.Tag{{Key: aws.String("mlstack:expires-at"), Value: aws.String("2000-01-01T00:00:00Z")}}
	sgs, err := e.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"mlstack-victim2"}})
	must(t, err)
	kps, err := e.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"mlstack-victim2"}})
	must(t, err)
	ids := []string{aws.ToString(inst.InstanceId), aws.ToString(sgs.SecurityGroups[0].GroupId), aws.ToString(kps.KeyPairs[0].KeyPairId)}
	_, err = e.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: past})
	must(t, err)
	for _, stack := range []string{"victim2", "ghost"} {
		_, err = e.ec2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("forged-" + stack), KeyType: ec2types.KeyTypeEd25519,
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeKeyPair, Tags: append([]ec2types.Tag{
				{Key: aws.String("mlstack:stack"), Value: aws.String(stack)}}, past...)}}})
		must(t, err)
	}
	before := e.everything()

	plan := e.ok("down", "--expired", "--dry-run", "--state-dir", e.stateDir)
	if strings.Contains(plan.stdout, "would delete") || !strings.Contains(plan.stderr, "no matching stacks") {
		t.Errorf("sweep plan:\n%s\n%s", plan.stdout, plan.stderr)
	}
	e.ok("down", "--expired", "--yes", "--state-dir", e.stateDir)
	if after := e.everything(); strings.Join(before, "|") != strings.Join(after, "|") {
		t.Fatalf("the sweep deleted on forged tags:\nbefore %v\nafter  %v", before, after)
	}
	for _, s := range e.ls() {
		if s.Stack == "victim2" && (s.ExpiresAt == nil || s.ExpiresAt.Before(time.Now().Add(3*time.Hour))) {
			t.Errorf("victim2 expires at %s: the forged tag counted", s.ExpiresAt)
		}
	}

	e.ok(append([]string{"down", "--yes"}, flags...)...)
	for _, stack := range []string{"victim2", "ghost"} {
		_, err = e.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("forged-" + stack)})
		must(t, err)
	}
	e.assertNothingLeft()
}

// TestStackLivesInOneRegion: with demo live in eu-west-3, every command on
// demo in us-east-1 is refused before any change, naming eu-west-3, also
// from a machine without local state.
func TestStackLivesInOneRegion(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("demo")...)...)
	before := e.everything()
	fresh := t.TempDir()
	for _, args := range [][]string{
		{"down", "--yes", "--stack", "demo", "--region", "us-east-1", "--state-dir", fresh},
		{"down", "--dry-run", "--stack", "demo", "--region", "us-east-1", "--state-dir", fresh},
		{"up", "--no-wait", "--allow-cidr", allowCIDR, "--stack", "demo", "--region", "us-east-1", "--state-dir", fresh},
		{"up", "--no-wait", "--allow-cidr", allowCIDR, "--stack", "demo", "--region", "us-east-1", "--state-dir", e.stateDir},
		{"status", "--stack", "demo", "--region", "us-east-1", "--state-dir", fresh},
		{"creds", "rotate", "--skip-mlflow", "--stack", "demo", "--region", "us-east-1", "--state-dir", e.stateDir},
	} {
		e.rec.reset()
		res := e.mlstack(args...)
		if res.code != 2 || !strings.Contains(res.stderr, "stack demo lives in eu-west-3 (its IAM user mlstack-demo is tagged mlstack:region=eu-west-3), not in us-east-1: pass --region eu-west-3") {
			t.Errorf("%v: exit %d\n%s", args, res.code, res.stderr)
		}
		if m := e.rec.mutating(); len(m) != 0 {
			t.Errorf("%v made mutating calls %v", args, m)
		}
	}
	if after := e.everything(); strings.Join(before, "|") != strings.Join(after, "|") {
		t.Fatalf("the wrong region changed resources:\nbefore %v\nafter  %v", before, after)
	}
	if ls := e.ok("ls").stdout; !strings.Contains(ls, "demo") || !strings.Contains(ls, "running") {
		t.Errorf("ls after the refusals:\n%s", ls)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("demo")...)...)
	e.assertNothingLeft()
}

// TestSweepsAndDownKnowOwners: stacks record their creator; sweeps act on
// the caller's own stacks unless --any-owner; down --stack of another's
// stack names the owner and needs --yes.
func TestSweepsAndDownKnowOwners(t *testing.T) {
	e := newEnv(t)
	admin, alice := e.admin(), e.colleague("alice")
	aliceDir := t.TempDir()
	if res := e.as(alice, "up", "--no-wait", "--allow-cidr", allowCIDR, "--stack", "alices", "--state-dir", aliceDir); res.code != 0 {
		t.Fatalf("alice's up: %s", res.stderr)
	}
	alicesOnly := e.everything()
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("mine")...)...)

	ls := e.ok("ls").stdout
	if !strings.Contains(ls, "OWNER") || !lineHas(ls, "alices", alice.arn) || !lineHas(ls, "mine", admin.arn) {
		t.Errorf("ls:\n%s", ls)
	}
	plan := e.ok("down", "--all", "--any-owner", "--dry-run", "--state-dir", e.stateDir).stdout
	if !strings.Contains(plan, "would delete stack alices") || !strings.Contains(plan, "by "+alice.arn) {
		t.Errorf("--any-owner plan:\n%s", plan)
	}
	res := e.ok("down", "--all", "--yes", "--state-dir", e.stateDir)
	if !strings.Contains(res.stdout, "deleted  mine") || strings.Contains(res.stdout, "alices") ||
		!strings.Contains(res.stderr, "leaving stack alices alone: created by "+alice.arn+", not by you ("+admin.arn+"); --any-owner includes it") {
		t.Fatalf("admin's sweep:\n%s\n%s", res.stdout, res.stderr)
	}
	e.assertNothingLeft(alicesOnly...)

	res = e.mlstack("down", "--stack", "alices", "--state-dir", t.TempDir())
	if res.code != 2 || !strings.Contains(res.stderr, "stack alices was created by "+alice.arn+", not by you ("+admin.arn+"): refusing to delete it without --yes") {
		t.Errorf("down of alice's stack without --yes: exit %d\n%s", res.code, res.stderr)
	}
	code, out := answerOnTerminal(t, "n", "down", "--stack", "alices", "--state-dir", t.TempDir())
	if code != 2 || !strings.Contains(out, "Delete stack alices (created by "+alice.arn+", not by you)") {
		t.Errorf("down of alice's stack on a terminal: exit %d\n%s", code, out)
	}
	e.assertNothingLeft(alicesOnly...)
	res = e.ok("down", "--stack", "alices", "--yes", "--state-dir", t.TempDir())
	if !strings.Contains(res.stderr, "stack alices was created by "+alice.arn+", not by you") {
		t.Errorf("down --yes of alice's stack:\n%s", res.stderr)
	}
	e.removeColleague(alice, "alice")
	e.assertNothingLeft()
}

// TestSweepByTheSameRole: a CI role's stacks belong to the role, whatever
// the session: the next run's sweep (a new session) finds them, and leaves
// an admin's stack alone.
func TestSweepByTheSameRole(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	_, err := e.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ci-deployer"), AssumeRolePolicyDocument: aws.String(trust)})
	must(t, err)
	session := func(name string) principal {
		out, err := e.stsAs("test", "test", "").AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: aws.String("arn:aws:iam::123456789012:role/ci-deployer"), RoleSessionName: aws.String(name)})
		must(t, err)
		c := out.Credentials
		return principal{key: aws.ToString(c.AccessKeyId), secret: aws.ToString(c.SecretAccessKey), token: aws.ToString(c.SessionToken)}
	}
	if res := e.as(session("run-1"), "up", "--no-wait", "--allow-cidr", allowCIDR, "--stack", "ci1", "--state-dir", t.TempDir()); res.code != 0 {
		t.Fatalf("CI's up: %s", res.stderr)
	}
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("kept")...)...)
	if ls := e.ok("ls").stdout; !lineHas(ls, "ci1", "arn:aws:iam::123456789012:role/ci-deployer") {
		t.Errorf("ls:\n%s", ls)
	}
	res := e.as(session("run-2"), "down", "--all", "--yes", "--state-dir", t.TempDir())
	if res.code != 0 || !strings.Contains(res.stdout, "deleted  ci1") || !strings.Contains(res.stderr, "leaving stack kept alone") {
		t.Fatalf("the next run's sweep: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("kept")...)...)
	_, err = e.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("ci-deployer")})
	must(t, err)
	e.assertNothingLeft()
}

// lineHas reports whether a line of out holds all of words.
func lineHas(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			return true
		}
	}
	return false
}

// TestDriftRefused: changes made to the stack outside mlstack that widen
// what it may do, or who can get in, stop up (and creds rotate) before any
// change; undone, up works again.
func TestDriftRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	flags := e.stackFlags("drift")
	up := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)
	e.ok(up...)
	broad := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	pol, err := e.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("broad"), PolicyDocument: aws.String(broad)})
	must(t, err)
	_, err = e.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("other"), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
	must(t, err)
	user, role, prof := aws.String("mlstack-drift"), aws.String("mlstack-drift-server"), aws.String("mlstack-drift-server")
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	cases := []struct {
		name       string
		drift, fix func() error
		want       string
		rotate     bool // creds rotate refuses it too
	}{
		{"user: managed policy", func() error {
			_, err := e.iam.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: user, PolicyArn: pol.Policy.Arn})
			return err
		}, func() error {
			_, err := e.iam.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: user, PolicyArn: pol.Policy.Arn})
			return err
		}, "IAM user mlstack-drift has managed policy " + aws.ToString(pol.Policy.Arn) + " attached", true},
		{"user: inline policy", func() error {
			_, err := e.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: user, PolicyName: aws.String("extra"), PolicyDocument: aws.String(broad)})
			return err
		}, func() error {
			_, err := e.iam.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: user, PolicyName: aws.String("extra")})
			return err
		}, "IAM user mlstack-drift has inline policy extra", true},
		{"role: trust policy", func() error {
			_, err := e.iam.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: role,
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::666666666666:root"},"Action":"sts:AssumeRole"}]}`)})
			return err
		}, func() error {
			_, err := e.iam.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: role, PolicyDocument: aws.String(trust)})
			return err
		}, "IAM role mlstack-drift-server lets other principals than EC2 assume it", false},
		{"role: managed policy", func() error {
			_, err := e.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: role, PolicyArn: pol.Policy.Arn})
			return err
		}, func() error {
			_, err := e.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: role, PolicyArn: pol.Policy.Arn})
			return err
		}, "IAM role mlstack-drift-server has managed policy", false},
		{"profile: another role", func() error {
			if _, err := e.iam.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: prof, RoleName: role}); err != nil {
				return err
			}
			_, err := e.iam.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: prof, RoleName: aws.String("other")})
			return err
		}, func() error {
			_, err := e.iam.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: prof, RoleName: aws.String("other")})
			return err // up puts the stack's role back
		}, "instance profile mlstack-drift-server holds role other", false},
		{"key pair: another key", func() error { return e.replaceKeyPair("drift") }, func() error {
			_, err := e.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("mlstack-drift")})
			return err // up imports this machine's key again
		}, "key pair mlstack-drift holds another public key", false},
	}
	for _, c := range cases {
		must(t, c.drift())
		e.rec.reset()
		res := e.mlstack(up...)
		if res.code == 0 || !strings.Contains(res.stderr, c.want) || !strings.Contains(res.stderr, "mlstack will not use or change it") {
			t.Errorf("%s: up exit %d\n%s", c.name, res.code, res.stderr)
		}
		if c.rotate {
			res = e.mlstack(append([]string{"creds", "rotate", "--skip-mlflow"}, flags...)...)
			if res.code == 0 || !strings.Contains(res.stderr, c.want) {
				t.Errorf("%s: creds rotate exit %d\n%s", c.name, res.code, res.stderr)
			}
		}
		if m := e.rec.mutating(); len(m) != 0 {
			t.Errorf("%s: mutating calls before refusing: %v", c.name, m)
		}
		must(t, c.fix())
		e.ok(up...)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	_, err = e.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("other")})
	must(t, err)
	_, err = e.iam.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: pol.Policy.Arn})
	must(t, err)
	e.assertNothingLeft()
}

// replaceKeyPair swaps the stack's key pair for one holding another key,
// with the stack's tags, as someone with EC2 rights could.
func (e *env) replaceKeyPair(stack string) error {
	ctx := context.Background()
	name := aws.String("mlstack-" + stack)
	kps, err := e.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{*name}})
	if err != nil {
		return err
	}
	if _, err := e.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: name}); err != nil {
		return err
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	_, err = e.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: name, PublicKeyMaterial: ssh.MarshalAuthorizedKey(sp),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeKeyPair, Tags: kps.KeyPairs[0].Tags}}})
	return err
}

// TestWideCIDRsAsk: a public prefix wider than /24, or several that add up
// to the internet, is refused without a terminal or --yes before any AWS
// call, asked about on a terminal, and opened with --yes.
func TestWideCIDRsAsk(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("wide")
	for _, c := range []struct {
		cidrs []string
		want  string
	}{
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, "--allow-cidr 0.0.0.0/1 128.0.0.0/1 opens the tracking server (tcp 5000) to the whole internet"},
		{[]string{"203.0.112.0/23"}, "to 512 public addresses (203.0.112.0/23 is wider than a /24)"},
		{[]string{"198.51.100.7/32", "0.0.0.0/0"}, "to the whole internet"},
	} {
		args := []string{"up", "--no-wait"}
		for _, cidr := range c.cidrs {
			args = append(args, "--allow-cidr", cidr)
		}
		e.rec.reset()
		res := e.mlstack(append(args, flags...)...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) || !strings.Contains(res.stderr, "pass --yes to open it all the same") || len(e.rec.calls()) != 0 {
			t.Errorf("%v: exit %d, %d AWS calls\n%s", c.cidrs, res.code, len(e.rec.calls()), res.stderr)
		}
	}
	code, out := answerOnTerminal(t, "n", append([]string{"up", "--no-wait", "--allow-cidr", "8.0.0.0/8"}, flags...)...)
	if code != 2 || !strings.Contains(out, "to 16777216 public addresses") || !strings.Contains(out, "Open it? [y/N]") || !strings.Contains(out, "not confirmed") {
		t.Errorf("on a terminal: exit %d\n%s", code, out)
	}
	e.assertNothingLeft()
	res := e.ok(append([]string{"up", "--no-wait", "--yes", "--ssh", "--allow-cidr", "0.0.0.0/0"}, flags...)...)
	if !strings.Contains(res.stderr, "opens the tracking server (tcp 5000 and SSH on tcp 22) to the whole internet") {
		t.Errorf("--yes:\n%s", res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestOwnerWithComma: an operator whose IAM user name holds a comma (IAM
// allows it; IAM, S3, SSM and RDS refuse it in a tag value, and so does the
// proxy) makes, reads and removes a stack; its owner value is the mapped
// one, and down counts it as the caller's.
func TestOwnerWithComma(t *testing.T) {
	e := newEnv(t)
	p := e.colleague("ci,deployer")
	res := e.as(p, append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("oc")...)...)
	if res.code != 0 {
		t.Fatalf("up as %s: exit %d: %s", p.arn, res.code, res.stderr)
	}
	u, err := e.iam.GetUser(context.Background(), &iam.GetUserInput{UserName: aws.String("mlstack-oc")})
	must(t, err)
	var owner string
	for _, tag := range u.User.Tags {
		if aws.ToString(tag.Key) == "mlstack:owner" {
			owner = aws.ToString(tag.Value)
		}
	}
	if !strings.HasPrefix(owner, "arn:aws:iam::123456789012:user/ci_deployer sha256:") {
		t.Errorf("owner tag %q", owner)
	}
	res = e.as(p, append([]string{"down", "--yes"}, e.stackFlags("oc")...)...)
	if res.code != 0 || strings.Contains(res.stderr, "not by you") {
		t.Fatalf("down as %s: exit %d: %s", p.arn, res.code, res.stderr)
	}
	e.removeColleague(p, "ci,deployer")
	e.assertNothingLeft()
}
