package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

const testCIDR = "198.51.100.7/32"

// upOpts are the options of an up of stack in dir that needs nothing from
// the network: one allowed CIDR, no health wait, and an IP detector that
// must not be asked.
func upOpts(dir, stack string) (UpOptions, *bytes.Buffer, *bytes.Buffer) {
	out, log := &bytes.Buffer{}, &bytes.Buffer{}
	return UpOptions{
		Stack: Stack{Name: stack, StateDir: dir}, Streams: Streams{Out: out, Log: log},
		AllowCIDRs: []string{testCIDR}, NoWait: true,
		hooks: testhooks.Hooks{DetectIP: func() (netip.Addr, error) { return netip.Addr{}, errors.New("DetectIP must not be called") }},
	}, out, log
}

// mustUp runs up over f and fails the test on an error.
func mustUp(t *testing.T, f *cloudfake.FakeAWS, o UpOptions) {
	t.Helper()
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatalf("up: %v\nprogress:\n%s", err, o.Log)
	}
}

// upStack is a stack made by one up over f, in a fresh state dir; the
// call log starts empty after it.
func upStack(t *testing.T, f *cloudfake.FakeAWS, stack string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	o, _, _ := upOpts(dir, stack)
	mustUp(t, f, o)
	f.ResetCalls()
	return dir
}

// savedSecrets reads state.json of the stack.
func savedSecrets(t *testing.T, dir, stack string) *local.Secrets {
	t.Helper()
	s, err := local.StackDir(dir, stack).Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpCreatesEveryResource(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, out, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)

	// Seven resources, the two secrets in SSM and the two keys the server published there.
	if got := f.Owns("demo"); len(got) != 12 {
		t.Fatalf("stack owns %d resources, want 12: %v", len(got), got)
	}
	sec := savedSecrets(t, dir, "demo")
	if sec == nil || sec.Account != cloudfake.FakeAccount || sec.Region != cloudfake.FakeRegion || sec.MLflowUser != "admin" ||
		len(sec.MLflowPassword) != 32 || len(sec.FlaskSecretKey) != 48 || !strings.HasPrefix(sec.SSHPublicKey, "ssh-ed25519 ") {
		t.Fatalf("state.json = %+v", sec)
	}

	// Every resource carries the stack's tags.
	wantTags := func(kind string, tags map[string]string) {
		t.Helper()
		if tags[cloud.TagStack] != "demo" || tags[cloud.TagRegion] != cloudfake.FakeRegion || tags[cloud.TagVersion] != Version || tags[cloud.TagCreatedAt] == "" {
			t.Errorf("%s tags = %v", kind, tags)
		}
		if _, ok := tags[cloud.TagExpiresAt]; ok {
			t.Errorf("%s has an expiry without --ttl: %v", kind, tags)
		}
	}
	f.Mu.Lock()
	u := f.Users[n.User]
	wantTags("user", cloud.IAMTagMap(u.User.Tags))
	if aws.ToString(u.User.Path) != cloud.IAMPath {
		t.Errorf("user path %s", aws.ToString(u.User.Path))
	}
	if len(u.Keys) != 1 || u.Keys[0].ID != sec.AccessKeyID || u.Keys[0].Secret != sec.SecretAccessKey {
		t.Errorf("user keys %+v, saved key %s", u.Keys, sec.AccessKeyID)
	}
	if !cloud.SamePolicy(u.Policies[n.Policy], cloud.BucketPolicy("aws", n.Bucket)) {
		t.Errorf("user policy %s", u.Policies[n.Policy])
	}
	r := f.Roles[n.Role]
	wantTags("role", cloud.IAMTagMap(r.Role.Tags))
	if !cloud.SamePolicy(r.Policies[n.Policy], cloud.RolePolicy("aws", cloudfake.FakeAccount, n)) || !cloud.SamePolicy(aws.ToString(r.Role.AssumeRolePolicyDocument), cloud.EC2TrustPolicy("eu-west-3")) {
		t.Errorf("role policies %v, trust %s", r.Policies, aws.ToString(r.Role.AssumeRolePolicyDocument))
	}
	p := f.Profiles[n.Profile]
	wantTags("profile", cloud.IAMTagMap(p.Prof.Tags))
	if !slices.Equal(p.Roles, []string{n.Role}) {
		t.Errorf("profile holds %v", p.Roles)
	}
	b := f.Buckets[n.Bucket]
	wantTags("bucket", b.Tags)
	if b.Pab == nil || !aws.ToBool(b.Pab.BlockPublicAcls) || !aws.ToBool(b.Pab.BlockPublicPolicy) ||
		!aws.ToBool(b.Pab.IgnorePublicAcls) || !aws.ToBool(b.Pab.RestrictPublicBuckets) || !b.Encrypted || b.Region != cloudfake.FakeRegion {
		t.Errorf("bucket %+v", b)
	}
	if len(f.Groups) != 1 {
		t.Fatalf("%d security groups", len(f.Groups))
	}
	g := f.Groups[0].SG
	wantTags("security group", cloud.EC2TagMap(g.Tags))
	if aws.ToString(g.VpcId) != "vpc-0default" || aws.ToString(g.GroupName) != n.SecurityGroup {
		t.Errorf("group %s in %s", aws.ToString(g.GroupName), aws.ToString(g.VpcId))
	}
	if rules := cloud.IngressRules(g.IpPermissions); !slices.Equal(rules, []cloud.Rule{{Port: 5000, CIDR: testCIDR}}) {
		t.Errorf("ingress %v", rules)
	}
	kp := f.KeyPair(n.KeyPair)
	wantTags("key pair", cloud.EC2TagMap(kp.Kp.Tags))
	if string(kp.Material) != sec.SSHPublicKey {
		t.Errorf("key pair material %q, saved public key %q", kp.Material, sec.SSHPublicKey)
	}
	if len(f.Instances) != 1 {
		t.Fatalf("%d instances", len(f.Instances))
	}
	inst := f.Instances[0]
	wantTags("instance", cloud.EC2TagMap(inst.Inst.Tags))
	if cloud.EC2TagMap(inst.Inst.Tags)["Name"] != n.Instance || aws.ToString(inst.Inst.ImageId) != "ami-newamd64" ||
		aws.ToString(inst.Inst.KeyName) != n.KeyPair || inst.Inst.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired ||
		!strings.HasSuffix(aws.ToString(inst.Inst.IamInstanceProfile.Arn), "/"+n.Profile) ||
		aws.ToString(inst.Inst.SecurityGroups[0].GroupId) != aws.ToString(g.GroupId) {
		t.Errorf("instance %+v", inst.Inst)
	}
	ud := cloudfake.UserDataB64Text(t, inst.UserData)
	for _, secret := range []string{sec.MLflowPassword, sec.FlaskSecretKey, "PRIVATE KEY"} {
		if strings.Contains(ud, secret) {
			t.Errorf("the user-data holds a secret: %.6s…", secret)
		}
	}
	for name, want := range map[string]string{"admin-password": sec.MLflowPassword, "flask-secret-key": sec.FlaskSecretKey} {
		p := f.Params["/mlstack/demo/"+name]
		if p == nil || p.Typ != "SecureString" || p.Value != want {
			t.Errorf("SSM %s = %+v", name, p)
			continue
		}
		wantTags("SSM "+name, p.Tags)
	}
	uri := "https://" + aws.ToString(inst.Inst.PublicDnsName) + ":5000"
	f.Mu.Unlock()

	if out.String() != uri+"\n" {
		t.Errorf("out = %q, want the tracking URI %s", out, uri)
	}
	if !strings.Contains(log.String(), "mlstack env --stack demo") {
		t.Errorf("progress lacks the next step:\n%s", log)
	}
	// The instance is launched last, after everything it needs.
	mut := f.Mutating()
	if mut[len(mut)-1] != "EC2.RunInstances" || f.Count("EC2.RunInstances") != 1 {
		t.Errorf("mutating calls %v: want one RunInstances, last", mut)
	}
	for _, c := range mut {
		if strings.Contains(c, "Delete") || strings.Contains(c, "Terminate") || strings.Contains(c, "Revoke") {
			t.Errorf("a fresh up called %s", c)
		}
	}

	// Local files: all 0600 in a 0700 folder.
	sd := local.StackDir(dir, "demo")
	if fi, err := os.Stat(sd.Path()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state folder: %v %v", fi.Mode(), err)
	}
	for _, name := range []string{"state.json", "env", "id_ed25519", "ssh_host_key.pub", "known_hosts", "server.crt"} {
		fi, err := os.Stat(filepath.Join(sd.Path(), name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	env := readFile(t, sd.EnvFile())
	for _, want := range []string{"MLFLOW_TRACKING_URI='" + uri + "'", "AWS_ACCESS_KEY_ID='" + sec.AccessKeyID + "'",
		"AWS_SECRET_ACCESS_KEY='" + sec.SecretAccessKey + "'", "MLFLOW_TRACKING_PASSWORD='" + sec.Users[sec.EnvUser] + "'",
		"AWS_DEFAULT_REGION='eu-west-3'", "MLFLOW_TRACKING_SERVER_CERT_PATH='" + sd.ServerCertFile() + "'"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("env file lacks %s:\n%s", want, env)
		}
	}
	if sec.EnvUser == "" || sec.EnvUser == sec.MLflowUser || strings.Contains(string(env), sec.MLflowPassword) {
		t.Errorf("the env file must sign in as the creator's user %q, never the admin", sec.EnvUser)
	}
	if strings.Contains(string(env), "MLFLOW_S3_ENDPOINT_URL") {
		t.Error("env file names an S3 endpoint without an override")
	}
	kh := readFile(t, sd.KnownHostsFile())
	f.Mu.Lock()
	dns, ip := aws.ToString(f.Instances[0].Inst.PublicDnsName), aws.ToString(f.Instances[0].Inst.PublicIpAddress)
	f.Mu.Unlock()
	if !strings.Contains(string(kh), dns) || !strings.Contains(string(kh), ip) || !strings.Contains(string(kh), "ssh-ed25519 ") {
		t.Errorf("known_hosts = %q", kh)
	}
	// Secrets never reach the progress output.
	for _, s := range []string{sec.SecretAccessKey, sec.MLflowPassword, sec.FlaskSecretKey} {
		if strings.Contains(log.String(), s) {
			t.Error("a secret reached the progress output")
		}
	}
}

func TestUpTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	before := savedSecrets(t, dir, "demo")
	f.ResetCalls()
	o, out, _ := upOpts(dir, "demo")
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("a second up made mutating calls: %v", m)
	}
	if !strings.HasPrefix(out.String(), "https://ec2-") {
		t.Errorf("out = %q", out)
	}
	if after := savedSecrets(t, dir, "demo"); !reflect.DeepEqual(*after, *before) {
		t.Errorf("state changed:\n%+v\n%+v", before, after)
	}
}

func TestUpDryRun(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, out, _ := upOpts(dir, "demo")
	o.DryRun = true
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %v", m)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("dry run wrote %v", entries)
	}
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, want := range []string{
		"(plan) would create IAM user " + n.User,
		"(plan) would create IAM role " + n.Role,
		"(plan) would create instance profile " + n.Profile,
		"(plan) would put role " + n.Role + " into instance profile " + n.Profile,
		"(plan) would create S3 bucket " + n.Bucket,
		"(plan) would create security group " + n.SecurityGroup + " in vpc-0default",
		"(plan) would set ingress of " + n.SecurityGroup + " to exactly: tcp 5000 from " + testCIDR,
		"(plan) would import a locally generated ed25519 key pair " + n.KeyPair,
		"(plan) would launch instance " + n.Instance + " from ami-newamd64",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}

	// On a complete stack the plan says so, and still writes nothing.
	dir2 := upStack(t, f, "demo")
	f.ResetCalls()
	o, out, _ = upOpts(dir2, "demo")
	o.DryRun = true
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if out.String() != "(plan) stack demo is complete: nothing to do\n" {
		t.Errorf("plan of a complete stack = %q", out)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %v", m)
	}
}

func TestUpTTLRetagsLiveStack(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.ResetCalls()
	o, out, _ := upOpts(dir, "demo")
	o.TTL, o.Output = "2h", "json"
	start := time.Now()
	mustUp(t, f, o)

	var rep cloud.StackJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("json report %q: %v", out, err)
	}
	if rep.ExpiresAt == nil || rep.ExpiresAt.Before(start.Add(2*time.Hour-time.Minute)) || rep.ExpiresAt.After(start.Add(2*time.Hour+time.Minute)) {
		t.Fatalf("expires_at %v", rep.ExpiresAt)
	}
	if rep.Stack != "demo" || rep.Account != cloudfake.FakeAccount || rep.Region != cloudfake.FakeRegion || rep.Health != cloud.HealthNotChecked ||
		rep.TrackingURI == nil || !strings.HasPrefix(*rep.TrackingURI, "https://") || rep.Instance == nil || !strings.HasPrefix(rep.Instance.ID, "i-") ||
		len(rep.Resources) != 12 || rep.EnvFile == nil || !strings.HasSuffix(*rep.EnvFile, "/demo/env") {
		t.Errorf("report %+v", rep)
	}
	want := []string{"EC2.CreateTags", "IAM.TagInstanceProfile", "IAM.TagRole", "IAM.TagUser", "S3.PutBucketTagging"}
	if got := mutSorted(f); !slices.Equal(got, want) {
		t.Errorf("ttl on a live stack: mutating calls %v, want %v", got, want)
	}
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for kind, tags := range map[string]map[string]string{
		"instance": cloud.EC2TagMap(f.Instances[0].Inst.Tags), "group": cloud.EC2TagMap(f.Groups[0].SG.Tags),
		"key pair": cloud.EC2TagMap(f.KeyPairs[0].Kp.Tags), "user": cloud.IAMTagMap(f.Users[n.User].User.Tags),
		"role": cloud.IAMTagMap(f.Roles[n.Role].Role.Tags), "profile": cloud.IAMTagMap(f.Profiles[n.Profile].Prof.Tags),
		"bucket": f.Buckets[n.Bucket].Tags,
	} {
		if tags[cloud.TagExpiresAt] != rep.ExpiresAt.Format(time.RFC3339) || tags[cloud.TagStack] != "demo" {
			t.Errorf("%s tags after --ttl: %v", kind, tags)
		}
	}
}

// mutSorted are the mutating calls made so far, sorted.
func mutSorted(f *cloudfake.FakeAWS) []string {
	m := f.Mutating()
	slices.Sort(m)
	return m
}

func TestUpRefusesForeignLookAlike(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	other := cloudfake.StackTagsFor("other", time.Now())
	cases := []struct {
		name string
		seed func(f *cloudfake.FakeAWS)
		want string
	}{
		{"untagged user", func(f *cloudfake.FakeAWS) { f.AddUser(n.User, nil) }, `IAM user "mlstack-demo" exists but is not tagged`},
		{"user of another stack", func(f *cloudfake.FakeAWS) { f.AddUser(n.User, other) }, `IAM user "mlstack-demo" exists but is not tagged`},
		{"untagged role", func(f *cloudfake.FakeAWS) { f.AddRole(n.Role, nil) }, `IAM role "mlstack-demo-server" exists but is not tagged`},
		{"untagged profile", func(f *cloudfake.FakeAWS) { f.AddProfile(n.Profile, nil) }, `instance profile "mlstack-demo-server" exists`},
		{"untagged bucket", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil) }, `S3 bucket "` + n.Bucket + `" exists but is not tagged`},
		{"bucket of another stack", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, other) }, `S3 bucket "` + n.Bucket + `" exists but is not tagged`},
		{"bucket of another account", func(f *cloudfake.FakeAWS) { f.AddBucket(n.Bucket, nil).Foreign = true }, "exists but this identity cannot use it"},
		{"untagged security group", func(f *cloudfake.FakeAWS) { f.AddGroup(n.SecurityGroup, nil) }, `security group "mlstack-demo (sg-`},
		{"untagged key pair", func(f *cloudfake.FakeAWS) { f.AddKeyPair(n.KeyPair, nil) }, `key pair "mlstack-demo" exists but is not tagged`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			c.seed(f)
			dir := t.TempDir()
			o, _, _ := upOpts(dir, "demo")
			err := Up(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("up = %v, want an error with %q", err, c.want)
			}
			if m := f.Mutating(); len(m) != 0 {
				t.Errorf("mutating calls before refusing: %v", m)
			}
			if s := savedSecrets(t, dir, "demo"); s != nil {
				t.Error("state.json written before refusing")
			}
		})
	}
}

func TestUpRefusesInstanceWithoutLocalSecrets(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	id := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	o, _, _ := upOpts(t.TempDir(), "demo")
	err := Up(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "already runs instance "+id) || !strings.Contains(err.Error(), "no local secrets") {
		t.Fatalf("up = %v", err)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

func TestUpRelaunchesAfterStaleClientToken(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	first := f.LiveInstances()[0]
	if savedSecrets(t, dir, "demo").LaunchNonce != "" {
		t.Fatal("first launch saved a nonce")
	}
	// The instance died; the same client token now answers it, terminated.
	f.SetInstanceState(first, ec2types.InstanceStateNameTerminated)
	f.ResetCalls()
	o, out, _ := upOpts(dir, "demo")
	mustUp(t, f, o)
	if n := f.Count("EC2.RunInstances"); n != 2 {
		t.Errorf("RunInstances called %d times, want 2 (stale token, then a new one)", n)
	}
	live := f.LiveInstances()
	if len(live) != 1 || live[0] == first {
		t.Fatalf("live instances %v (first was %s)", live, first)
	}
	nonce := savedSecrets(t, dir, "demo").LaunchNonce
	if len(nonce) != 12 {
		t.Errorf("saved nonce %q", nonce)
	}
	f.Mu.Lock()
	tok := f.Instance(live[0]).Token
	f.Mu.Unlock()
	sgID := f.Groups[0].SG.GroupId
	if tok != cloud.ClientToken("demo", aws.ToString(sgID), nonce+"/t2.micro") {
		t.Errorf("relaunch token %s is not the one of the saved nonce", tok)
	}
	if !strings.Contains(out.String(), "ec2-") {
		t.Errorf("out = %q", out)
	}
	// Another up uses the saved nonce: nothing is launched.
	f.ResetCalls()
	o, _, _ = upOpts(dir, "demo")
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("up after the relaunch made mutating calls: %v", m)
	}
}

func TestUpTerminatesDuplicatesKeepingOldest(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	oldest := f.LiveInstances()[0]
	dup1 := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	dup2 := f.AddStackInstance("demo", ec2types.InstanceStateNamePending)
	f.PageSize = 1 // the stack's instances arrive one page at a time

	o, _, _ := upOpts(dir, "demo")
	o.DryRun = true
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(o.Out.(*bytes.Buffer).String(), "(plan) would terminate 2 duplicate instances") {
		t.Errorf("plan = %q", o.Out)
	}

	f.ResetCalls()
	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if got := f.Mutating(); !slices.Equal(got, []string{"EC2.TerminateInstances"}) {
		t.Errorf("mutating calls %v", got)
	}
	if live := f.LiveInstances(); !slices.Equal(live, []string{oldest}) {
		t.Errorf("live instances %v, want only the oldest %s", live, oldest)
	}
	if !strings.Contains(log.String(), dup1) || !strings.Contains(log.String(), dup2) {
		t.Errorf("progress does not name the duplicates:\n%s", log)
	}
}

func TestUpStartsStoppedInstance(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	id := f.LiveInstances()[0]
	f.SetInstanceState(id, ec2types.InstanceStateNameStopped)
	oldCert := readFile(t, local.StackDir(dir, "demo").ServerCertFile())

	o, out, _ := upOpts(dir, "demo")
	o.DryRun = true
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(plan) would start stopped instance "+id) {
		t.Errorf("plan = %q", out)
	}

	f.ResetCalls()
	o, out, _ = upOpts(dir, "demo")
	mustUp(t, f, o)
	if got := f.Mutating(); !slices.Equal(got, []string{"EC2.StartInstances"}) {
		t.Errorf("mutating calls %v", got)
	}
	f.Mu.Lock()
	dns := aws.ToString(f.Instance(id).Inst.PublicDnsName)
	f.Mu.Unlock()
	if !strings.Contains(dns, "198-51-100") || out.String() != "https://"+dns+":5000\n" {
		t.Errorf("out = %q, instance now at %s", out, dns)
	}
	env := readFile(t, local.StackDir(dir, "demo").EnvFile())
	if !strings.Contains(string(env), dns) {
		t.Errorf("env file not rewritten for the new address:\n%s", env)
	}
	// The server made a certificate for its new address: up pinned it.
	certPEM := readFile(t, local.StackDir(dir, "demo").ServerCertFile())
	cert, err := server.ParseCert(certPEM)
	if err != nil || bytes.Equal(certPEM, oldCert) || server.Covers(cert, dns, time.Now()) != nil {
		t.Errorf("after the start: certificate re-pinned %v, covers %s: %v", !bytes.Equal(certPEM, oldCert), dns, err)
	}
}

func TestUpRejectsBadInputBeforeAWS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(t *testing.T, o *UpOptions) // setup: fails t on an error
		want string
	}{
		{"no stack", func(t *testing.T, o *UpOptions) { o.Stack.Name = "" }, "missing stack name"},
		{"upper-case stack", func(t *testing.T, o *UpOptions) { o.Stack.Name = "Demo" }, "lowercase"},
		{"doubled hyphen", func(t *testing.T, o *UpOptions) { o.Stack.Name = "a--b" }, "doubled hyphens"},
		{"long stack", func(t *testing.T, o *UpOptions) { o.Stack.Name = strings.Repeat("a", 25) }, "at most 24"},
		{"no state dir", func(t *testing.T, o *UpOptions) { o.Stack.StateDir = "" }, "no state directory"},
		{"host bits", func(t *testing.T, o *UpOptions) { o.AllowCIDRs = []string{"10.0.0.1/8"} }, "host bits set"},
		{"not a CIDR", func(t *testing.T, o *UpOptions) { o.AllowCIDRs = []string{"somewhere"} }, "is not a CIDR"},
		{"IPv6 CIDR", func(t *testing.T, o *UpOptions) { o.AllowCIDRs = []string{"2001:db8::/32"} }, "only IPv4"},
		{"bad TTL", func(t *testing.T, o *UpOptions) { o.TTL = "5x" }, "--ttl"},
		{"zero days", func(t *testing.T, o *UpOptions) { o.TTL = "0d" }, "--ttl"},
		{"TTL too long", func(t *testing.T, o *UpOptions) { o.TTL = "100d" }, "at most 90d"},
		{"old MLflow", func(t *testing.T, o *UpOptions) { o.MLflowVersion = "3.4.0" }, "3.5.0 or newer"},
		{"MLflow latest", func(t *testing.T, o *UpOptions) { o.MLflowVersion = "latest" }, "exact version"},
		{"output yaml", func(t *testing.T, o *UpOptions) { o.Output = "yaml" }, "--output"},
		{"instance type", func(t *testing.T, o *UpOptions) { o.InstanceType = "micro" }, "not like t2.micro"},
		{"negative timeout", func(t *testing.T, o *UpOptions) { o.Timeout = -time.Second }, "--timeout"},
		{"region", func(t *testing.T, o *UpOptions) { o.Region = "moon-1" }, "not a valid AWS region"},
		{"ISO region", func(t *testing.T, o *UpOptions) { o.Region = "us-isob-east-1" },
			"mlstack does not support the ISO partitions (us-isob-east-1 is in aws-iso-b)"},
		{"IP not detected", func(t *testing.T, o *UpOptions) { o.AllowCIDRs = nil }, "could not be detected"},
		{"IPv6 detected", func(t *testing.T, o *UpOptions) {
			o.AllowCIDRs = nil
			o.hooks.DetectIP = func() (netip.Addr, error) { return netip.MustParseAddr("2001:db8::1"), nil }
		}, "is not IPv4"},
		{"state dir is a file", func(t *testing.T, o *UpOptions) {
			p := filepath.Join(o.StateDir, "file")
			must(t, os.WriteFile(p, nil, 0o600))
			o.StateDir = p
		}, "not writable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			o, _, _ := upOpts(t.TempDir(), "demo")
			c.edit(t, &o)
			err := Up(f.Ctx(), o)
			if !cloud.IsUsage(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("up = %v, want a usage error with %q", err, c.want)
			}
			if f.Connects != 0 || len(f.Calls()) != 0 {
				t.Errorf("bad input reached AWS: connect %d, calls %v", f.Connects, f.Calls())
			}
		})
	}
}

func TestUpUnknownInstanceTypeIsUsageError(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	for _, typ := range []string{"z9.mega", "mac1.metal"} {
		o, _, _ := upOpts(t.TempDir(), "demo")
		o.InstanceType = typ
		err := Up(f.Ctx(), o)
		if !cloud.IsUsage(err) || !strings.Contains(err.Error(), typ) {
			t.Errorf("up --instance-type %s = %v", typ, err)
		}
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls %v", m)
	}
	f.FailNext("DescribeInstanceTypes", cloudfake.AwsErr("InternalError"), 1)
	o, _, _ := upOpts(t.TempDir(), "demo")
	if err := Up(f.Ctx(), o); err == nil || cloud.IsUsage(err) || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("up with DescribeInstanceTypes failing = %v", err)
	}
}

func TestUpArm64InstanceType(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	o, _, _ := upOpts(t.TempDir(), "demo")
	o.InstanceType = "t4g.small"
	mustUp(t, f, o)
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if img := aws.ToString(f.Instances[0].Inst.ImageId); img != "ami-newarm64" {
		t.Errorf("arm64 instance launched from %s", img)
	}
	if typ := f.Instances[0].Inst.InstanceType; typ != "t4g.small" {
		t.Errorf("instance type %s", typ)
	}
}

func TestUpNoImage(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.Images = nil
	o, _, _ := upOpts(t.TempDir(), "demo")
	err := Up(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "no official Ubuntu 24.04 x86_64 image") {
		t.Fatalf("up = %v", err)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls %v", m)
	}
}

func TestUpDetectsCallerIP(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	o, _, log := upOpts(t.TempDir(), "demo")
	o.AllowCIDRs = nil
	o.hooks.DetectIP = func() (netip.Addr, error) { return netip.MustParseAddr("203.0.113.9"), nil }
	mustUp(t, f, o)
	if rules := cloud.IngressRules(f.Groups[0].SG.IpPermissions); !slices.Equal(rules, []cloud.Rule{{Port: 5000, CIDR: "203.0.113.9/32"}}) {
		t.Errorf("ingress %v", rules)
	}
	if !strings.Contains(log.String(), "allowing only your public IP 203.0.113.9/32") {
		t.Errorf("progress:\n%s", log)
	}
}

func TestUpConvergesIngress(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, _, log := upOpts(dir, "demo")
	o.SSH = true
	o.AllowCIDRs = []string{"0.0.0.0/0"}
	o.Yes = true
	mustUp(t, f, o)
	if !strings.Contains(log.String(), "opens the tracking server (tcp 5000 and SSH on tcp 22) to the whole internet") || !strings.Contains(log.String(), "SSH is open") {
		t.Errorf("progress:\n%s", log)
	}
	if rules := cloud.IngressRules(f.Groups[0].SG.IpPermissions); len(rules) != 2 {
		t.Fatalf("ingress with --ssh: %v", rules)
	}

	// Without --ssh, and from another CIDR: port 22 and the old CIDR go.
	f.ResetCalls()
	o, _, _ = upOpts(dir, "demo")
	o.AllowCIDRs = []string{"192.0.2.0/24", testCIDR}
	mustUp(t, f, o)
	got := cloud.IngressRules(f.Groups[0].SG.IpPermissions)
	slices.SortFunc(got, func(a, b cloud.Rule) int { return strings.Compare(a.CIDR, b.CIDR) })
	if !slices.Equal(got, []cloud.Rule{{Port: 5000, CIDR: "192.0.2.0/24"}, {Port: 5000, CIDR: testCIDR}}) {
		t.Errorf("ingress %v", got)
	}
	if m := f.Mutating(); !slices.Equal(m, []string{"EC2.RevokeSecurityGroupIngress", "EC2.AuthorizeSecurityGroupIngress"}) {
		t.Errorf("mutating calls %v", m)
	}

	// A rule added by hand that shares a permission with a wanted one: the
	// permission goes and the wanted rule comes back.
	f.Mu.Lock()
	g := f.Groups[0]
	for i, p := range g.SG.IpPermissions {
		g.SG.IpPermissions[i].IpRanges = append(slices.Clone(p.IpRanges), ec2types.IpRange{CidrIp: aws.String("10.9.9.9/32")})
	}
	g.SG.IpPermissions = append(g.SG.IpPermissions, ec2types.IpPermission{IpProtocol: aws.String("-1"),
		Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}})
	f.Mu.Unlock()
	f.ResetCalls()
	o, _, _ = upOpts(dir, "demo")
	o.AllowCIDRs = []string{"192.0.2.0/24", testCIDR}
	mustUp(t, f, o)
	got = cloud.IngressRules(f.Groups[0].SG.IpPermissions)
	slices.SortFunc(got, func(a, b cloud.Rule) int { return strings.Compare(a.CIDR, b.CIDR) })
	if !slices.Equal(got, []cloud.Rule{{Port: 5000, CIDR: "192.0.2.0/24"}, {Port: 5000, CIDR: testCIDR}}) {
		t.Errorf("ingress after repair %v", got)
	}
}

func TestUpResumesAfterFailure(t *testing.T) {
	t.Parallel()
	cases := []struct{ op, want string }{
		{"CreateBucket", "creating S3 bucket"},
		{"PutPublicAccessBlock", "blocking public access"},
		{"PutBucketEncryption", "setting default encryption"},
		{"CreateUser", "creating IAM user"},
		{"PutUserPolicy", "setting policy of IAM user"},
		{"CreateAccessKey", "creating access key"},
		{"CreateRole", "creating IAM role"},
		{"PutRolePolicy", "setting policy of IAM role"},
		{"CreateInstanceProfile", "creating instance profile"},
		{"AddRoleToInstanceProfile", "adding role"},
		{"CreateSecurityGroup", "creating security group"},
		{"AuthorizeSecurityGroupIngress", "opening ingress"},
		{"ImportKeyPair", "importing key pair"},
		{"RunInstances", "launching instance"},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			f := newInstalledFake(t)
			f.FailNext(c.op, cloudfake.AwsErr("InternalError"), 1)
			dir := t.TempDir()
			o, _, _ := upOpts(dir, "demo")
			err := Up(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "run `mlstack up --stack demo --state-dir "+dir+" --allow-cidr "+testCIDR+"` again") {
				t.Fatalf("up = %v, want %q and the advice to run up again", err, c.want)
			}
			if f.Count("EC2.RunInstances") > 0 && c.op != "RunInstances" {
				t.Errorf("launched an instance although %s failed", c.op)
			}
			o, _, _ = upOpts(dir, "demo")
			mustUp(t, f, o)
			if got := f.Owns("demo"); len(got) != 12 {
				t.Errorf("after resuming the stack owns %v", got)
			}
			f.Mu.Lock()
			defer f.Mu.Unlock()
			if u := f.Users["mlstack-demo"]; len(u.Keys) != 1 || u.Keys[0].ID != savedSecrets(t, dir, "demo").AccessKeyID {
				t.Errorf("user keys after resuming: %+v", u.Keys)
			}
		})
	}
}

func TestUpRetriesPropagation(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.FailNext("RunInstances", cloudfake.AwsErrMsg("InvalidParameterValue", "Value (mlstack-demo-server) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"), 2)
	f.FailNext("PutUserPolicy", cloudfake.AwsErr("NoSuchEntity"), 1)
	f.FailNext("PutRolePolicy", cloudfake.AwsErr("NoSuchEntity"), 1)
	f.FailNext("AddRoleToInstanceProfile", cloudfake.AwsErr("NoSuchEntity"), 1)
	f.FailNext("CreateAccessKey", cloudfake.AwsErr("NoSuchEntity"), 2)
	o, _, log := upOpts(t.TempDir(), "demo")
	mustUp(t, f, o)
	for op, n := range map[string]int{"EC2.RunInstances": 3, "IAM.PutUserPolicy": 2, "IAM.PutRolePolicy": 2,
		"IAM.AddRoleToInstanceProfile": 2, "IAM.CreateAccessKey": 3} {
		if got := f.Count(op); got != n {
			t.Errorf("%s called %d times, want %d", op, got, n)
		}
	}
	if !strings.Contains(log.String(), "the new instance profile is not visible to EC2 yet; retrying") {
		t.Errorf("progress:\n%s", log)
	}
	if live := f.LiveInstances(); len(live) != 1 {
		t.Errorf("live instances %v", live)
	}
}

func TestUpRunInstancesOtherInvalidParameterIsNotRetried(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.FailNext("RunInstances", cloudfake.AwsErrMsg("InvalidParameterValue", "Invalid availability zone"), 1)
	o, _, _ := upOpts(t.TempDir(), "demo")
	if err := Up(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "Invalid availability zone") {
		t.Fatalf("up = %v", err)
	}
	if n := f.Count("EC2.RunInstances"); n != 1 {
		t.Errorf("RunInstances called %d times", n)
	}
}

func TestUpConcurrentCreationsAreAdopted(t *testing.T) {
	t.Parallel()
	// Another run created the resources between our look and our create:
	// EC2 and IAM answer "already exists", and up adopts what is tagged ours.
	f := newInstalledFake(t)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	dir := t.TempDir()
	f.FailAfter("CreateUser", cloudfake.AwsErr("EntityAlreadyExists"), 1)
	f.FailAfter("CreateRole", cloudfake.AwsErr("EntityAlreadyExists"), 1)
	f.FailAfter("CreateInstanceProfile", cloudfake.AwsErr("EntityAlreadyExists"), 1)
	f.FailAfter("CreateBucket", cloudfake.AwsErr("BucketAlreadyOwnedByYou"), 1)
	f.FailAfter("CreateSecurityGroup", cloudfake.AwsErr("InvalidGroup.Duplicate"), 1)
	f.FailAfter("ImportKeyPair", cloudfake.AwsErr("InvalidKeyPair.Duplicate"), 1)
	f.FailAfter("AuthorizeSecurityGroupIngress", cloudfake.AwsErr("InvalidPermission.Duplicate"), 1)
	o, _, _ := upOpts(dir, "demo")
	mustUp(t, f, o)
	if got := f.Owns("demo"); len(got) != 12 {
		t.Errorf("stack owns %v", got)
	}
	f.Mu.Lock()
	bt := f.Buckets[n.Bucket].Tags
	f.Mu.Unlock()
	if bt[cloud.TagStack] != "demo" {
		t.Errorf("adopted bucket is not tagged: %v", bt)
	}
}

func TestUpHealthWait(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	// The server's side of ensureLogin: the creator's login fails until
	// the admin made the user.
	var mu sync.Mutex
	logins := map[string]string{}
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		user, pw, _ := r.BasicAuth()
		switch r.URL.Path {
		case "/health":
		case "/api/2.0/mlflow/users/get":
			if logins[user] != pw || user == "" {
				http.Error(w, "", http.StatusUnauthorized)
			}
		case "/api/2.0/mlflow/users/create":
			var in struct{ Username, Password string }
			if user != "admin" || json.NewDecoder(r.Body).Decode(&in) != nil {
				http.Error(w, "", http.StatusForbidden)
				return
			}
			logins[in.Username] = in.Password
		default:
			http.NotFound(w, r)
		}
	}))
	defer healthy.Close()
	dir := t.TempDir()
	o, out, log := upOpts(dir, "demo")
	o.NoWait, o.hooks.HealthURL, o.Output, o.User = false, healthy.URL+"/health", "json", "carol"
	mustUp(t, f, o)
	sec := savedSecrets(t, dir, "demo")
	if mu.Lock(); len(logins) != 1 || logins["carol"] == "" || logins["carol"] != sec.Users["carol"] || sec.EnvUser != "carol" {
		t.Errorf("up made users %v on the server, want carol with the saved password", slices.Collect(maps.Keys(logins)))
	}
	mu.Unlock()
	// Once made, a later up only checks the login.
	out.Reset()
	mustUp(t, f, o)
	if !strings.Contains(log.String(), "making MLflow user carol") || strings.Count(log.String(), "making MLflow user") != 1 {
		t.Errorf("progress:\n%s", log)
	}
	var rep cloud.StackJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Health != cloud.HealthOK {
		t.Errorf("report %s: %v", out, err)
	}
	if !strings.Contains(log.String(), "the tracking server answers (after") {
		t.Errorf("progress:\n%s", log)
	}
	_ = f
}

// usersServer is an MLflow server's users API with the logins given:
// users/get answers a user's own login, users/create refuses a name it
// has, update-password is counted.
func usersServer(t *testing.T, admin string, logins map[string]string) (url string, passwordChanges *atomic.Int32) {
	t.Helper()
	var mu sync.Mutex
	passwordChanges = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		user, pw, _ := r.BasicAuth()
		var in struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		switch {
		case r.URL.Path == "/health":
		case r.URL.Path == "/api/2.0/mlflow/users/get" && (user == "" || logins[user] != pw):
			http.Error(w, "", http.StatusUnauthorized)
		case r.URL.Path == "/api/2.0/mlflow/users/get":
		case user != admin || logins[admin] != pw:
			http.Error(w, "", http.StatusForbidden)
		case r.URL.Path == "/api/2.0/mlflow/users/create" && logins[in.Username] != "":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists"}`)
		case r.URL.Path == "/api/2.0/mlflow/users/create":
			logins[in.Username] = in.Password
		case r.URL.Path == "/api/2.0/mlflow/users/update-password":
			passwordChanges.Add(1)
			logins[in.Username] = in.Password
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, passwordChanges
}

// TestUpKeepsExistingUsersPasswords: the env file's user exists on the
// server with another password (made from another machine, or an admin):
// up does not reset it, and says what to run instead, with the flags in
// use; the stack is up all the same.
func TestUpKeepsExistingUsersPasswords(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	sec := savedSecrets(t, dir, "demo")
	for _, tt := range []struct{ name, user string }{
		{"a teammate's user", "carol"},
		{"an admin made on the server", "ops"},
	} {

		t.Run(tt.name, func(t *testing.T) {
			logins := map[string]string{sec.MLflowUser: sec.MLflowPassword, tt.user: "their-Own-Password-123"}
			want := "MLflow user " + tt.user + " exists on the server with another password than this machine holds, so the env file " +
				local.StackDir(dir, "demo").EnvFile() + " cannot sign in as them: up does not reset an existing user's password " +
				"(they would lose their login). If " + tt.user + " is you, `mlstack users passwd --stack demo --state-dir " + dir + " " +
				tt.user + "` gives them a new password here and rewrites the env file; else `mlstack up --stack demo --state-dir " + dir +
				" --allow-cidr 198.51.100.7/32 --user NAME` with a name of your own"
			url, changes := usersServer(t, sec.MLflowUser, logins)
			o, _, _ := upOpts(dir, "demo")
			o.NoWait, o.hooks.HealthURL, o.User = false, url+"/health", tt.user
			err := Up(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), want) || !cloud.IsUsage(err) {
				t.Fatalf("up = %v (usage %v), want a usage error saying %q", err, cloud.IsUsage(err), want)
			}
			if changes.Load() != 0 || logins[tt.user] != "their-Own-Password-123" || logins[sec.MLflowUser] != sec.MLflowPassword {
				t.Errorf("up changed %d password(s) on the server", changes.Load())
			}
			if strings.Contains(err.Error(), sec.MLflowPassword) || strings.Contains(err.Error(), "their-Own") {
				t.Error("the error holds a password")
			}
		})
	}
}

func TestUpUnhealthyExplainsFromConsole(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	dir := upStack(t, f, "demo")
	id := f.LiveInstances()[0]
	f.Mu.Lock()
	f.Console[id] = "boot line 1\r\nboot line 2\r\npip install mlflow: failed\r\n"
	f.Mu.Unlock()

	o, _, log := upOpts(dir, "demo")
	o.NoWait, o.hooks.HealthURL, o.Timeout = false, sick.URL+"/health", time.Nanosecond
	err := Up(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "not healthy") || !strings.Contains(err.Error(), "the stack exists") ||
		!strings.Contains(err.Error(), "--ssh` opens SSH") {
		t.Fatalf("up = %v", err)
	}
	if !strings.Contains(log.String(), "| pip install mlflow: failed") || !strings.Contains(log.String(), "instance console output from EC2") {
		t.Errorf("progress lacks the console tail:\n%s", log)
	}

	// No console output yet.
	f.Mu.Lock()
	delete(f.Console, id)
	f.Mu.Unlock()
	o, _, log = upOpts(dir, "demo")
	o.NoWait, o.hooks.HealthURL, o.Timeout = false, sick.URL+"/health", time.Nanosecond
	if err := Up(f.Ctx(), o); err == nil {
		t.Fatal("up succeeded")
	}
	if !strings.Contains(log.String(), "the bootstrap log is empty so far") {
		t.Errorf("progress:\n%s", log)
	}

	// The console cannot be read either.
	f.FailNext("GetConsoleOutput", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	o, _, log = upOpts(dir, "demo")
	o.NoWait, o.hooks.HealthURL, o.Timeout = false, sick.URL+"/health", time.Nanosecond
	if err := Up(f.Ctx(), o); err == nil {
		t.Fatal("up succeeded")
	}
	if !strings.Contains(log.String(), "could not read the bootstrap log") {
		t.Errorf("progress:\n%s", log)
	}
}

func TestUpWarnsAboutLostLocalKeys(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	sd := local.StackDir(dir, "demo")
	// The pinned host key and certificate are gone: up pins them again
	// from what the instance published.
	for _, f := range []string{sd.HostKeyFile(), sd.ServerCertFile()} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if !strings.Contains(log.String(), "pinned the server's certificate") {
		t.Errorf("progress:\n%s", log)
	}
	for _, f := range []string{sd.HostKeyFile(), sd.ServerCertFile()} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not pinned again: %v", err)
		}
	}

	// Another machine, after the instance died: it has no secret for the
	// user's key, and no private half of the key pair.
	f.SetInstanceState(f.LiveInstances()[0], ec2types.InstanceStateNameTerminated)
	f.ResetCalls()
	o, _, _ = upOpts(t.TempDir(), "demo")
	// The key pair holds the first machine's key: drift, refused before any change.
	err := Up(f.Ctx(), o)
	var d *cloud.DriftError
	if !errors.As(err, &d) || !strings.Contains(err.Error(), "key pair mlstack-demo holds another public key") {
		t.Fatalf("up = %v", err)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls %v before refusing", m)
	}
}

func TestUpForeignStateDir(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.Account = "999999999999"
	f.ResetCalls()
	o, _, _ := upOpts(dir, "demo")
	err := Up(f.Ctx(), o)
	if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "belongs to stack") {
		t.Fatalf("up = %v", err)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("mutating calls %v", f.Mutating())
	}
}

func TestUpNoDefaultVPC(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.Vpcs = f.Vpcs[:1]
	o, _, _ := upOpts(t.TempDir(), "demo")
	if err := Up(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "no default VPC") {
		t.Fatalf("up = %v", err)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("mutating calls %v", f.Mutating())
	}
}

func TestUpNoPublicAddress(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.Mu.Lock()
	f.Instances[0].Inst.PublicDnsName, f.Instances[0].Inst.PublicIpAddress = nil, nil
	f.Mu.Unlock()
	o, _, _ := upOpts(dir, "demo")
	err := Up(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "has no public DNS name or IP") {
		t.Fatalf("up = %v", err)
	}
}

func TestUpWaitsForPendingInstance(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	id := f.LiveInstances()[0]
	f.SetInstanceState(id, ec2types.InstanceStateNamePending)
	f.Mu.Lock()
	f.Instance(id).Inst.PublicDnsName, f.Instance(id).Inst.PublicIpAddress = nil, nil
	f.Mu.Unlock()
	f.ResetCalls()
	o, out, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if !strings.Contains(log.String(), "waiting for instance "+id+" to run") {
		t.Errorf("progress:\n%s", log)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("mutating calls %v", f.Mutating())
	}
	if !strings.HasPrefix(out.String(), "https://ec2-") {
		t.Errorf("out = %q", out)
	}
}

func TestUpWaitsForTheStackLock(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	unlock, err := local.Lock(f.Ctx(), dir, "demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// Another run holds the stack: up waits until its context ends.
	ctx, cancel := context.WithTimeout(f.Ctx(), 20*time.Millisecond)
	defer cancel()
	o, _, log := upOpts(dir, "demo")
	err = Up(ctx, o)
	if !errors.Is(err, context.DeadlineExceeded) || cloud.IsUsage(err) {
		t.Fatalf("up = %v", err)
	}
	if !strings.Contains(log.String(), "another mlstack run is working on stack demo; waiting for it") {
		t.Errorf("progress:\n%s", log)
	}
	if f.Connects != 0 {
		t.Error("connected while another run held the stack")
	}
	// A dry run takes no lock.
	o, _, _ = upOpts(dir, "demo")
	o.DryRun = true
	if err := Up(f.Ctx(), o); err != nil {
		t.Errorf("dry run under another run's lock: %v", err)
	}
}

func TestUpNamesTooLongForTheRegion(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.Region = "xx-extraordinarilylongname-9"
	o, _, _ := upOpts(t.TempDir(), strings.Repeat("a", 24))
	err := Up(f.Ctx(), o)
	if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "(limit 63): choose a shorter stack name") {
		t.Fatalf("up = %v", err)
	}
	if len(f.Calls()) != 0 {
		t.Errorf("calls %v", f.Calls())
	}
}

func TestUpRecordsCallsInAWSCalls(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	calls := &cloud.CallLog{}
	o, _, _ := upOpts(t.TempDir(), "demo")
	o.AWS = cloud.AWS{Region: cloudfake.FakeRegion, Calls: calls}
	mustUp(t, f, o)
	if got, want := len(calls.Calls()), len(f.Calls()); got != want || got == 0 {
		t.Errorf("AWS.Calls recorded %d calls, the fake saw %d", got, want)
	}
	if sum := calls.Summary(); !strings.Contains(sum, "(19 mutating)") || !strings.Contains(sum, "EC2.RunInstances×1") {
		t.Errorf("summary %q", sum)
	}
}

func TestUpIngressChangedMeanwhile(t *testing.T) {
	t.Parallel()
	// The unwanted rule went between up's look and its revoke: EC2 answers
	// success with the permission unmatched, and up says to run again.
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.Mu.Lock()
	g := f.Groups[0]
	g.SG.IpPermissions = append(g.SG.IpPermissions, ec2types.IpPermission{IpProtocol: aws.String("tcp"),
		FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}})
	f.Mu.Unlock()
	f.FailIf("RevokeSecurityGroupIngress", nil, 1, false, func(any) bool {
		g.SG.IpPermissions = g.SG.IpPermissions[:1] // the matcher runs under the fake's lock
		return false
	})
	o, _, _ := upOpts(dir, "demo")
	err := Up(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "1 permission not matched\nrun `mlstack up --stack demo") {
		t.Fatalf("up = %v", err)
	}
	o, _, _ = upOpts(dir, "demo")
	mustUp(t, f, o)
	if rules := cloud.IngressRules(f.Groups[0].SG.IpPermissions); !slices.Equal(rules, []cloud.Rule{{Port: 5000, CIDR: testCIDR}}) {
		t.Errorf("ingress %v", rules)
	}
}

// TestUpPutsPinnedLock: before the launch, up puts the install lock in the
// bucket, and the user-data pins exactly those bytes; a second up finds it.
func TestUpPutsPinnedLock(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, _, _ := upOpts(dir, "demo")
	mustUp(t, f, o)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	calls := f.Calls()
	if i, j := slices.Index(calls, "S3.PutObject"), slices.Index(calls, "EC2.RunInstances"); i < 0 || j < i {
		t.Fatalf("the lock is not put before the launch: %v", calls)
	}
	var ud string
	for _, i := range f.Instances {
		ud = cloudfake.UserDataB64Text(t, i.UserData)
	}
	b := f.Buckets[n.Bucket]
	if len(b.Data) != 1 {
		t.Fatalf("bucket holds %d objects, want the lock", len(b.Data))
	}
	for key, body := range b.Data {
		sum := sha256.Sum256(body)
		if !strings.HasPrefix(key, "bootstrap/mlflow-lock-x86_64-") || !strings.Contains(ud, key) || !strings.Contains(ud, hex.EncodeToString(sum[:])) {
			t.Errorf("the user-data does not pin s3://%s/%s by its sha256", n.Bucket, key)
		}
	}
	f.ResetCalls()
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("second up: %v", m)
	}
}

// An untagged but live recorded instance would get a second server beside
// it, restoring an old backup into the bucket it still backs up to: up
// refuses before any change, and proceeds once the instance is terminated.
func TestUpRefusesWhileUntaggedRecordedInstanceLives(t *testing.T) {
	t.Parallel()
	for _, state := range []ec2types.InstanceStateName{ec2types.InstanceStateNameRunning, ec2types.InstanceStateNameStopped} {
		t.Run(string(state), func(t *testing.T) {
			t.Parallel()
			f := newInstalledFake(t)
			dir := upStack(t, f, "demo")
			id := f.LiveInstances()[0]
			f.SetInstanceState(id, state)
			f.Mu.Lock()
			f.Instance(id).Inst.Tags = nil
			f.Mu.Unlock()

			f.ResetCalls()
			o, _, _ := upOpts(dir, "demo")
			// Bounded: without the refusal up goes on and waits for a server.
			ctx, cancel := context.WithTimeout(f.Ctx(), 10*time.Second)
			defer cancel()
			err := Up(ctx, o)
			for _, want := range []string{id, "no longer carries the tag", "aws ec2 create-tags --resources " + id, "terminate-instances"} {
				if !cloud.IsUsage(err) || !strings.Contains(fmt.Sprint(err), want) {
					t.Errorf("up with %s untagged: %v, want a usage error naming %q", id, err, want)
				}
			}
			if m := f.Mutating(); len(m) != 0 {
				t.Errorf("refused up made mutating calls: %v", m)
			}

			f.SetInstanceState(id, ec2types.InstanceStateNameTerminated)
			o, _, _ = upOpts(dir, "demo")
			mustUp(t, f, o)
			if live := f.LiveInstances(); len(live) != 1 || live[0] == id {
				t.Errorf("live instances %v after the untagged %s was terminated", live, id)
			}
		})
	}
}
