package provision

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/mlstack/mlstack/cloudinit"
)

// planOf is what up would do to the stack, as discover plans it.
func planOf(t *testing.T, f *cloudfake.FakeAWS, dir string, edit func(o *UpOptions)) []string {
	t.Helper()
	o, _, _ := upOpts(dir, "demo")
	o.DryRun = true
	if edit != nil {
		edit(&o)
	}
	r, err := preflight(f.Ctx(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.release()
	if err := r.discover(f.Ctx()); err != nil {
		t.Fatal(err)
	}
	return texts(r.plan)
}

// texts is a plan's sentences, as --dry-run prints them after "(plan) would".
func texts(p []cloud.PlanStep) []string {
	var out []string
	for _, s := range p {
		out = append(out, s.Text)
	}
	return out
}

func TestPlanEmptyStack(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	got := planOf(t, f, t.TempDir(), nil)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	want := []string{
		"create IAM user " + n.User + " with a bucket-only policy and one access key",
		"create IAM role " + n.Role,
		"create instance profile " + n.Profile,
		"put role " + n.Role + " into instance profile " + n.Profile,
		"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)",
		"create security group " + n.SecurityGroup + " in vpc-0default",
		"set ingress of " + n.SecurityGroup + " to exactly: tcp 5000 from " + testCIDR,
		"import a locally generated ed25519 key pair " + n.KeyPair,
		"store admin-password as SSM SecureString /mlstack/demo/admin-password",
		"store flask-secret-key as SSM SecureString /mlstack/demo/flask-secret-key",
		"set the artifacts mode to direct (SSM parameter /mlstack/demo/artifacts)",
		"put the instance's install lock in s3://" + n.Bucket + "/" + lockKey(t),
		"launch instance " + n.Instance + " from ami-newamd64 (ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101) as t2.micro in eu-west-3a",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan\n got %q\nwant %q", got, want)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("planning made mutating calls %v", f.Mutating())
	}
}

func TestPlanDrift(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	cases := []struct {
		name  string
		drift func(f *cloudfake.FakeAWS)
		edit  func(o *UpOptions)
		want  []string
	}{
		{"complete", nil, nil, nil},
		{"user policy changed", func(f *cloudfake.FakeAWS) { f.Users[n.User].Policies[n.Policy] = `{"Statement":[]}` }, nil,
			[]string{"set the bucket-only policy of IAM user " + n.User}},
		{"user policy gone", func(f *cloudfake.FakeAWS) { delete(f.Users[n.User].Policies, n.Policy) }, nil,
			[]string{"set the bucket-only policy of IAM user " + n.User}},
		{"user key gone", func(f *cloudfake.FakeAWS) { f.Users[n.User].Keys = nil }, nil,
			[]string{"create an access key for " + n.User}},
		{"role policy changed", func(f *cloudfake.FakeAWS) {
			f.Roles[n.Role].Policies[n.Policy] = cloud.BucketPolicy("aws-cn", n.Bucket)
		}, nil,
			[]string{"set the bucket-only policy of IAM role " + n.Role}},
		{"role gone", func(f *cloudfake.FakeAWS) { delete(f.Roles, n.Role); f.Profiles[n.Profile].Roles = nil }, nil,
			[]string{"create IAM role " + n.Role, "put role " + n.Role + " into instance profile " + n.Profile}},
		{"profile gone", func(f *cloudfake.FakeAWS) { delete(f.Profiles, n.Profile) }, nil,
			[]string{"create instance profile " + n.Profile, "put role " + n.Role + " into instance profile " + n.Profile}},
		{"bucket public", func(f *cloudfake.FakeAWS) {
			f.Buckets[n.Bucket].Pab = &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true)}
		}, nil, []string{"block public access to S3 bucket " + n.Bucket}},
		{"bucket unencrypted", func(f *cloudfake.FakeAWS) { f.Buckets[n.Bucket].Encrypted = false }, nil,
			[]string{"set default encryption on S3 bucket " + n.Bucket}},
		{"bucket gone", func(f *cloudfake.FakeAWS) { delete(f.Buckets, n.Bucket) }, nil,
			[]string{"create S3 bucket " + n.Bucket + " (public access blocked, AES256 default encryption)",
				"put the instance's install lock in s3://" + n.Bucket + "/" + lockKey(t)}},
		{"extra ingress", func(f *cloudfake.FakeAWS) {
			g := f.Groups[0]
			g.SG.IpPermissions = append(g.SG.IpPermissions, ec2types.IpPermission{IpProtocol: aws.String("tcp"),
				FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}})
		}, nil, []string{"set ingress of " + n.SecurityGroup + " to exactly: tcp 5000 from " + testCIDR}},
		{"ingress gone", func(f *cloudfake.FakeAWS) { f.Groups[0].SG.IpPermissions = nil }, nil,
			[]string{"set ingress of " + n.SecurityGroup + " to exactly: tcp 5000 from " + testCIDR}},
		{"SSH wanted", nil, func(o *UpOptions) { o.SSH = true },
			[]string{"set ingress of " + n.SecurityGroup + " to exactly: tcp 5000 from " + testCIDR + ", tcp 22 from " + testCIDR}},
		{"other CIDRs", nil, func(o *UpOptions) { o.AllowCIDRs = []string{"192.0.2.0/24", "192.0.2.0/24", "203.0.113.5"} },
			[]string{"set ingress of " + n.SecurityGroup + " to exactly: tcp 5000 from 192.0.2.0/24, tcp 5000 from 203.0.113.5/32"}},
		{"key pair gone", func(f *cloudfake.FakeAWS) { f.KeyPairs = nil }, nil,
			[]string{"import a locally generated ed25519 key pair " + n.KeyPair}},
		{"instance gone", func(f *cloudfake.FakeAWS) {
			cloudfake.SetState(&f.Instances[0].Inst, ec2types.InstanceStateNameTerminated)
		}, nil,
			[]string{"launch instance " + n.Instance + " from ami-newamd64 (ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101) as t2.micro in eu-west-3a"}},
		{"instance stopped", func(f *cloudfake.FakeAWS) {
			cloudfake.SetState(&f.Instances[0].Inst, ec2types.InstanceStateNameStopped)
		}, nil,
			[]string{"start stopped instance INSTANCE"}},
		{"duplicate instance", func(f *cloudfake.FakeAWS) {
			src := f.Instances[0].Inst
			d := f.Launch(src.Tags, nil)
			d.Inst.IamInstanceProfile, d.Inst.KeyName, d.Inst.ImageId = src.IamInstanceProfile, src.KeyName, src.ImageId
			d.Inst.SecurityGroups, d.Inst.NetworkInterfaces = src.SecurityGroups, src.NetworkInterfaces
		}, nil, []string{"terminate 1 duplicate instance"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			dir := upStack(t, f, "demo")
			id := f.LiveInstances()[0]
			if c.drift != nil {
				f.Mu.Lock()
				c.drift(f)
				f.Mu.Unlock()
			}
			got := planOf(t, f, dir, c.edit)
			var want []string
			for _, w := range c.want {
				if w == "start stopped instance INSTANCE" {
					w = "start stopped instance " + id
				}
				want = append(want, w)
			}
			if !slices.Equal(got, want) {
				t.Errorf("plan\n got %q\nwant %q", got, want)
			}
			if len(f.Mutating()) != 0 {
				t.Errorf("planning made mutating calls %v", f.Mutating())
			}
		})
	}
}

func TestPlanMethods(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	img := &ec2types.Image{ImageId: aws.String("ami-1"), Name: aws.String("ubuntu")}
	running := ec2types.Instance{InstanceId: aws.String("i-1"), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}}
	stopped := ec2types.Instance{InstanceId: aws.String("i-2"), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameStopped}}
	noState := ec2types.Instance{InstanceId: aws.String("i-3")}
	pl := cloud.Placement{InstanceType: "t2.micro", SubnetID: "subnet-0b", Zone: "eu-west-3b"}
	fb := cloud.Placement{InstanceType: "t3.micro", SubnetID: "subnet-0a", Zone: "eu-west-3a", StandardCredits: true, Why: "t2.micro is not offered in eu-west-3"}
	for _, c := range []struct {
		got  []cloud.PlanStep
		want []string
	}{
		{cloud.InstancesPlan(nil, n, img, pl), []string{"launch instance mlstack-demo from ami-1 (ubuntu) as t2.micro in eu-west-3b"}},
		{cloud.InstancesPlan(nil, n, img, fb), []string{"launch instance mlstack-demo from ami-1 (ubuntu) as t3.micro in eu-west-3a (t2.micro is not offered in eu-west-3)"}},
		{cloud.InstancesPlan([]ec2types.Instance{running}, n, img, pl), nil},
		{cloud.InstancesPlan([]ec2types.Instance{noState}, n, img, pl), nil},
		{cloud.InstancesPlan([]ec2types.Instance{stopped, running, running}, n, img, pl), []string{"terminate 2 duplicate instances", "start stopped instance i-2"}},
		{(&cloud.KeyPairFound{}).Plan(n), []string{"import a locally generated ed25519 key pair mlstack-demo"}},
		{(&cloud.KeyPairFound{ID: "key-1"}).Plan(n), nil},
		{(&cloud.SGFound{VpcID: "vpc-1"}).Plan(n, nil), []string{"create security group mlstack-demo in vpc-1"}},
		{(&cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Rules: []cloud.Rule{{Port: 5000, CIDR: "10.0.0.0/8"}}}).Plan(n, []cloud.Rule{{Port: 5000, CIDR: "10.0.0.0/8"}}), nil},
		{(&cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Rules: []cloud.Rule{{Port: -1, CIDR: "10.0.0.0/8"}}}).Plan(n, []cloud.Rule{{Port: 5000, CIDR: "10.0.0.0/8"}}),
			[]string{"set ingress of mlstack-demo to exactly: tcp 5000 from 10.0.0.0/8"}},
		{(&cloud.UserFound{Exists: true, PolicyOK: true, Keys: []string{"k"}}).Plan(n, true), nil},
		{(&cloud.UserFound{Exists: true, PolicyOK: true, Keys: []string{"k"}}).Plan(n, false),
			[]string{"delete access key k of mlstack-demo (artifacts proxied: clients need no AWS key)"}},
		{(&cloud.UserFound{Exists: true, PolicyOK: true}).Plan(n, false), nil},
		{(&cloud.UserFound{}).Plan(n, false), []string{"create IAM user mlstack-demo with a bucket-only policy and no access key (artifacts proxied)"}},
		{modePlan(n, "", ArtifactsDirect, nil), []string{"set the artifacts mode to direct (SSM parameter /mlstack/demo/artifacts)"}},
		{modePlan(n, ArtifactsProxied, ArtifactsProxied, &running), nil},
		{modePlan(n, ArtifactsDirect, ArtifactsProxied, &running), []string{"set the artifacts mode to proxied (SSM parameter /mlstack/demo/artifacts)",
			"reboot instance i-1 so that its server serves artifacts proxied (unavailable for about a minute)"}},
		{(&cloud.RoleFound{RoleExists: true, PolicyOK: true, ProfileExists: true, RoleInProf: true}).Plan(n), nil},
		{(&cloud.BucketFound{Exists: true, PublicBlocked: true, Encrypted: true}).Plan(n), nil},
	} {
		if got := texts(c.got); !slices.Equal(got, c.want) {
			t.Errorf("plan %q, want %q", got, c.want)
		}
	}
}

// lockKey is the bootstrap key of the x86_64 install lock.
func lockKey(t *testing.T) string {
	t.Helper()
	boot, err := cloudinit.Bootstrap(cloudinit.Params{Arch: cloudinit.ArchX8664})
	if err != nil {
		t.Fatal(err)
	}
	return boot[0].Key
}

// TestPlanJSONSteps: --dry-run --output json gives each step's verb, kind
// and name as fields, so that a program need not parse the sentences.
func TestPlanJSONSteps(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	o, out, _ := upOpts(t.TempDir(), "demo")
	o.DryRun, o.Output = true, "json"
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plan []cloud.PlanStep `json:"plan"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	want := map[cloud.PlanStep]bool{
		{Verb: "create", Kind: cloud.KindUser, Name: n.User}:                            true,
		{Verb: "put", Kind: cloud.KindProfile, Name: n.Profile}:                         true,
		{Verb: "set", Kind: cloud.KindSG, Name: n.SecurityGroup}:                        true,
		{Verb: "import", Kind: cloud.KindKeyPair, Name: n.KeyPair}:                      true,
		{Verb: "launch", Kind: cloud.KindInstance, Name: n.Instance}:                    true,
		{Verb: "store", Kind: cloud.KindParam, Name: n.Param(cloud.ParamAdminPassword)}: true,
	}
	for _, s := range got.Plan {
		if first, _, _ := strings.Cut(s.Text, " "); s.Verb != first || s.Kind == "" || s.Name == "" {
			t.Errorf("step %+v: verb, kind or name missing", s)
		}
		delete(want, cloud.PlanStep{Verb: s.Verb, Kind: s.Kind, Name: s.Name})
	}
	for s := range want {
		t.Errorf("no step %+v in %s", s, out)
	}
}
