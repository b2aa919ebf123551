package provision

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
	"golang.org/x/crypto/ssh"
)

func TestInstanceMismatch(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	w := cloud.InstanceRefs{ProfileARN: n.ProfileARN(), SGID: "sg-own", KeyName: n.KeyPair, Canonical: cloud.CanonicalOwner,
		ImageOwner: map[string]string{"ami-canonical": cloud.CanonicalOwner, "ami-evil": "666666666666"}}
	own := func() ec2types.Instance {
		return ec2types.Instance{
			InstanceId:         aws.String("i-1"),
			IamInstanceProfile: &ec2types.IamInstanceProfile{Arn: aws.String("arn:aws:iam::" + cloudfake.FakeAccount + ":instance-profile/mlstack/mlstack-demo-server")},
			SecurityGroups:     []ec2types.GroupIdentifier{{GroupId: aws.String("sg-own")}},
			KeyName:            aws.String(n.KeyPair), ImageId: aws.String("ami-canonical"),
		}
	}
	cases := []struct {
		name string
		edit func(i *ec2types.Instance)
		w    func(w *cloud.InstanceRefs)
		want string // "" consistent
	}{
		{"the stack's own", nil, nil, ""},
		{"group listed on the interface only", func(i *ec2types.Instance) {
			i.SecurityGroups = nil
			i.NetworkInterfaces = []ec2types.InstanceNetworkInterface{{Groups: []ec2types.GroupIdentifier{{GroupId: aws.String("sg-own")}}}}
		}, nil, ""},
		{"image EC2 no longer lists", func(i *ec2types.Instance) { i.ImageId = aws.String("ami-deregistered") }, nil, ""},
		{"no profile", func(i *ec2types.Instance) { i.IamInstanceProfile = nil }, nil, "does not run with the stack's instance profile"},
		{"another profile", func(i *ec2types.Instance) {
			i.IamInstanceProfile.Arn = aws.String("arn:aws:iam::" + cloudfake.FakeAccount + ":instance-profile/mlstack-demo-server")
		}, nil, "does not run with the stack's instance profile"},
		{"another account's profile", func(i *ec2types.Instance) {
			i.IamInstanceProfile.Arn = aws.String("arn:aws:iam::" + cloudfake.FakeOtherAccount + ":instance-profile/mlstack/mlstack-demo-server")
		}, nil, "instance profile"},
		{"an extra group", func(i *ec2types.Instance) {
			i.SecurityGroups = append(i.SecurityGroups, ec2types.GroupIdentifier{GroupId: aws.String("sg-wide")})
		}, nil, "are not the stack's group alone"},
		{"another group", func(i *ec2types.Instance) { i.SecurityGroups[0].GroupId = aws.String("sg-other") }, nil, "not the stack's group"},
		{"the stack has no group", nil, func(w *cloud.InstanceRefs) { w.SGID = "" }, "not the stack's group"},
		{"another key pair", func(i *ec2types.Instance) { i.KeyName = aws.String("attacker") }, nil, `key pair "attacker"`},
		{"no key pair", func(i *ec2types.Instance) { i.KeyName = nil }, nil, `key pair ""`},
		{"another owner's image", func(i *ec2types.Instance) { i.ImageId = aws.String("ami-evil") }, nil, "image ami-evil is not Canonical's (owner 666666666666)"},
		{"Canonical unknown here", func(i *ec2types.Instance) { i.ImageId = aws.String("ami-evil") }, func(w *cloud.InstanceRefs) { w.Canonical = "" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, ww := own(), w
			if c.edit != nil {
				c.edit(&i)
			}
			if c.w != nil {
				c.w(&ww)
			}
			got := ww.Mismatch(&i)
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("mismatch = %q, want %q", got, c.want)
			}
		})
	}
}

func TestProfileARNPartitions(t *testing.T) {
	t.Parallel()
	for region, want := range map[string]string{
		"eu-west-3":     "arn:aws:iam::123456789012:instance-profile/mlstack/mlstack-demo-server",
		"cn-north-1":    "arn:aws-cn:iam::123456789012:instance-profile/mlstack/mlstack-demo-server",
		"us-gov-west-1": "arn:aws-us-gov:iam::123456789012:instance-profile/mlstack/mlstack-demo-server",
	} {
		if got := cloud.NamesFor("demo", cloudfake.FakeAccount, region).ProfileARN(); got != want {
			t.Errorf("%s: %s, want %s", region, got, want)
		}
	}
}

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

func TestKeyFingerprints(t *testing.T) {
	t.Parallel()
	_, pub, err := local.NewSSHKey("k")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pk.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	moto := cloud.HexPairs(sum[:])
	if strings.Count(moto, ":") != 31 || hex.EncodeToString(sum[:]) != strings.ReplaceAll(moto, ":", "") {
		t.Fatalf("hex pairs %q", moto)
	}
	got := cloud.KeyFingerprints(string(pub))
	for _, want := range []string{cloudfake.AwsFingerprint(pub), strings.TrimRight(cloudfake.AwsFingerprint(pub), "="), ssh.FingerprintSHA256(pk), moto} {
		if !slices.Contains(got, want) {
			t.Errorf("%q not among %q", want, got)
		}
	}
	_, other, _ := local.NewSSHKey("other")
	if slices.Contains(got, cloudfake.AwsFingerprint(other)) {
		t.Error("another key's fingerprint accepted")
	}
	if cloud.KeyFingerprints("not a key") != nil {
		t.Error("garbage has fingerprints")
	}
}

func TestSamePolicyForms(t *testing.T) {
	t.Parallel()
	want := cloud.EC2TrustPolicy(cloudfake.FakeRegion)
	for _, c := range []struct {
		got  string
		same bool
	}{
		{want, true},
		{url.QueryEscape(want), true},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":["sts:AssumeRole"]}]}`, true},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}`, true},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}]}`, false},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::666666666666:root"},"Action":"sts:AssumeRole"}]}`, false},
		{`not json`, false},
	} {
		if cloud.SamePolicy(c.got, want) != c.same {
			t.Errorf("samePolicy(%s) = %v", c.got, !c.same)
		}
	}
}

func TestPrincipalOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"arn:aws:iam::123456789012:user/alice":                        "arn:aws:iam::123456789012:user/alice",
		"arn:aws:iam::123456789012:root":                              "arn:aws:iam::123456789012:root",
		"arn:aws:sts::123456789012:assumed-role/ci-deployer/run-4711": "arn:aws:iam::123456789012:role/ci-deployer",
		"arn:aws-cn:sts::123456789012:assumed-role/ops/alice":         "arn:aws-cn:iam::123456789012:role/ops",
		"arn:aws:sts::123456789012:federated-user/bob":                "arn:aws:sts::123456789012:federated-user/bob",
	} {
		if got := cloud.PrincipalOf(in); got != want {
			t.Errorf("principalOf(%s) = %s, want %s", in, got, want)
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

func TestStackHome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, "us-east-1")
	f := cloudfake.NewFakeAWS()
	h, err := cloud.FindHome(ctx, f, n)
	if err != nil || h.From != "" || h.User != nil || h.Role != nil || h.CheckRegion("demo", "us-east-1") != nil {
		t.Fatalf("nothing: %+v %v", h, err)
	}
	f.AddRole(n.Role, cloudfake.StackTagsFor("demo", time.Now())) // tagged eu-west-3
	h, _ = cloud.FindHome(ctx, f, n)
	if h.From != "IAM role "+n.Role {
		t.Errorf("role home %+v", h)
	}
	f.AddUser(n.User, cloud.StackTags("demo", cloudfake.FakeRegion, "arn:aws:iam::123456789012:user/alice", time.Now(), 0))
	h, _ = cloud.FindHome(ctx, f, n)
	err = h.CheckRegion("demo", "us-east-1")
	if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "stack demo lives in eu-west-3 (its IAM user mlstack-demo is tagged mlstack:region=eu-west-3), not in us-east-1: pass --region eu-west-3") {
		t.Errorf("checkRegion = %v", err)
	}
	if h.ForeignOwner("arn:aws:iam::123456789012:user/alice") != "" || h.ForeignOwner(cloudfake.FakeOwner) != "arn:aws:iam::123456789012:user/alice" {
		t.Errorf("foreignOwner of %+v", h)
	}
	if (cloud.StackHome{}).ForeignOwner(cloudfake.FakeOwner) != "" {
		t.Error("a stack without an owner tag counts as another's")
	}
	// A same-named user of another stack says nothing.
	g := cloudfake.NewFakeAWS()
	g.AddUser(n.User, cloudfake.StackTagsFor("other", time.Now()))
	if h, _ := cloud.FindHome(ctx, g, n); h.From != "" || h.Region != "" || h.Owner != "" {
		t.Errorf("foreign user: %+v", h)
	}
	for _, op := range []string{"GetUser", "GetRole"} {
		g.FailNext(op, cloudfake.AwsErr("ServiceUnavailable"), 1)
		if _, err := cloud.FindHome(ctx, g, n); !cloud.HasCode(err, "ServiceUnavailable") {
			t.Errorf("%s fails: %v", op, err)
		}
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

func TestWideOpening(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cidrs []string
		want  string // "" asks nothing
	}{
		{[]string{"203.0.113.7/32"}, ""},
		{[]string{"203.0.113.0/24"}, ""},
		{[]string{"203.0.113.0/24", "198.51.100.0/24"}, ""},
		{[]string{"10.0.0.0/8"}, ""},
		{[]string{"172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"}, ""},
		{[]string{"203.0.112.0/23"}, "512 public addresses (203.0.112.0/23 is wider than a /24)"},
		{[]string{"0.0.0.0/0"}, "the whole internet"},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, "the whole internet"},
		{[]string{"0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"}, "the whole internet"},
		{[]string{"0.0.0.0/1", "128.0.0.0/2"}, "public addresses"},
		{[]string{"8.0.0.0/8", "8.8.0.0/16"}, "16777216 public addresses (8.0.0.0/8 is wider than a /24)"},
		{[]string{"0.0.0.0/4"}, "234881024 public addresses"}, // 16 /8s less 0/8 and 10/8
	} {
		if got := cloud.WideOpening(c.cidrs); c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("wideOpening(%v) = %q, want %q", c.cidrs, got, c.want)
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
