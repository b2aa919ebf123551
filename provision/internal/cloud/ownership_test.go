package cloud_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
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
