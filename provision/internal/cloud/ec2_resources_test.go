package cloud_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
	"github.com/mlstack/mlstack/provision/local"
)

func TestEnsureKeyPairImportsThenLeavesAlone(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	_, line, err := local.NewSSHKey("demo")
	must(t, err)
	authorized := strings.TrimSpace(string(line))

	k, err := cloud.FindKeyPair(ctx, f, n, authorized)
	must(t, err)
	if p := k.Plan(n); k.ID != "" || len(p) != 1 || p[0].Verb != "import" || k.TagIDs() != nil {
		t.Fatalf("found %+v, plan %+v", k, p)
	}
	must(t, cloud.EnsureKeyPair(ctx, f, k, n, []byte(authorized), cloudfake.StackTagsFor("demo", time.Now()), newProgress(io.Discard)))
	kp := f.KeyPair(n.KeyPair)
	if kp == nil || k.ID != *kp.Kp.KeyPairId || cloud.EC2TagMap(kp.Kp.Tags)[cloud.TagStack] != "demo" || string(kp.Material) != authorized {
		t.Fatalf("key pair %+v, found %+v", kp, k)
	}
	if ids := k.TagIDs(); len(ids) != 1 || ids[0] != k.ID {
		t.Errorf("tag ids %v", ids)
	}

	// This machine's key is the one imported: found, nothing to do.
	k, err = cloud.FindKeyPair(ctx, f, n, authorized)
	must(t, err)
	f.ResetCalls()
	must(t, cloud.EnsureKeyPair(ctx, f, k, n, []byte(authorized), nil, newProgress(io.Discard)))
	if k.ID == "" || len(k.Plan(n)) != 0 || len(f.Calls()) != 0 {
		t.Errorf("found %+v, calls %v", k, f.Calls())
	}

	// Another machine's key under the stack's name is drift.
	_, other, err := local.NewSSHKey("other")
	must(t, err)
	var d *cloud.DriftError
	if _, err := cloud.FindKeyPair(ctx, f, n, strings.TrimSpace(string(other))); !errors.As(err, &d) || !strings.Contains(d.What, "holds another public key") {
		t.Errorf("find with another key = %v", err)
	}

	// Imported meanwhile by a concurrent run: fine. Refused otherwise: the error.
	must(t, cloud.EnsureKeyPair(ctx, f, &cloud.KeyPairFound{}, n, []byte(authorized), nil, newProgress(io.Discard)))
	f.FailNext("ImportKeyPair", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	err = cloud.EnsureKeyPair(ctx, f, &cloud.KeyPairFound{}, n, []byte(authorized), nil, newProgress(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "importing key pair mlstack-demo") || cloud.ErrorCode(err) != "UnauthorizedOperation" {
		t.Errorf("ensure = %v", err)
	}

	must(t, cloud.DeleteKeyPair(ctx, f, n, newProgress(io.Discard)))
	if f.KeyPair(n.KeyPair) != nil {
		t.Error("key pair left")
	}
	must(t, cloud.DeleteKeyPair(ctx, f, n, newProgress(io.Discard))) // gone already: done
	f.FailNext("DeleteKeyPair", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	if err := cloud.DeleteKeyPair(ctx, f, n, newProgress(io.Discard)); cloud.ErrorCode(err) != "UnauthorizedOperation" {
		t.Errorf("delete = %v", err)
	}
}

func TestSecurityGroupPlanAndReadings(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	want := []cloud.Rule{{Port: cloud.MlflowPort, CIDR: "198.51.100.7/32"}, {Port: 22, CIDR: "198.51.100.7/32"}}

	g, err := cloud.FindSecurityGroup(ctx, f, n)
	must(t, err)
	p := g.Plan(n, want)
	if g.ID != "" || g.VpcID != "vpc-0default" || len(p) != 2 || p[0].Text != "create security group mlstack-demo in vpc-0default" ||
		!strings.Contains(p[1].Text, "set ingress of mlstack-demo to exactly: tcp 5000 from 198.51.100.7/32, tcp 22 from 198.51.100.7/32") {
		t.Fatalf("found %+v, plan %+v", g, p)
	}
	if g.SSHOpen() || g.Allowed() != nil || g.TagIDs() != nil {
		t.Errorf("a missing group reads %v %v %v", g.SSHOpen(), g.Allowed(), g.TagIDs())
	}
	must(t, cloud.EnsureSecurityGroup(ctx, f, g, n, want, cloudfake.StackTagsFor("demo", time.Now()), newProgress(io.Discard)))
	g, err = cloud.FindSecurityGroup(ctx, f, n)
	must(t, err)
	if !g.SSHOpen() || strings.Join(g.Allowed(), " ") != "198.51.100.7/32" || len(g.Plan(n, want)) != 0 || len(g.TagIDs()) != 1 {
		t.Errorf("found %+v: ssh %v, allowed %v, plan %+v", g, g.SSHOpen(), g.Allowed(), g.Plan(n, want))
	}

	rows, rules, id, err := cloud.SGInventory(ctx, f, n)
	must(t, err)
	if len(rows) != 1 || rows[0].Kind != cloud.KindSG || rows[0].Name != n.SecurityGroup || id != g.ID || len(rules) != 2 {
		t.Errorf("inventory %+v %v %s", rows, rules, id)
	}

	// Look-alikes: the stack's tag on another name, or the name without the tag.
	f.AddGroup("mlstack-demo-copy", cloudfake.StackTagsFor("demo", time.Now()))
	f.AddGroup("mlstack-other", cloudfake.StackTagsFor("other", time.Now()), ec2types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(cloud.MlflowPort), ToPort: aws.Int32(cloud.MlflowPort),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
	})
	set := cloud.NewStackSet(cloudfake.FakeAccount)
	must(t, cloud.ListSecurityGroups(ctx, f, cloudfake.FakeRegion, set))
	got := set.Sorted()
	if len(got) != 2 || got[0].Stack != "demo" || len(got[0].Resources) != 1 || !got[0].SSH ||
		got[1].Stack != "other" || got[1].SSH || strings.Join(got[1].AllowedCIDRs, " ") != "0.0.0.0/0" {
		t.Errorf("listed %+v", got)
	}

	f2 := cloudfake.NewFakeAWS()
	f2.AddGroup(n.SecurityGroup, nil)
	rows, rules, id, err = cloud.SGInventory(f2.Ctx(), f2, n)
	if err != nil || rows != nil || rules != nil || id != "" {
		t.Errorf("inventory of an untagged look-alike: %v %v %q %v", rows, rules, id, err)
	}
	for _, op := range []string{"DescribeVpcs", "DescribeSecurityGroups"} {
		f2.FailNext(op, cloudfake.AwsErr("RequestLimitExceeded"), 1)
		if _, _, _, err := cloud.SGInventory(f2.Ctx(), f2, n); cloud.ErrorCode(err) != "RequestLimitExceeded" {
			t.Errorf("%s failing: %v", op, err)
		}
	}
	f2.FailNext("DescribeSecurityGroups", cloudfake.AwsErr("RequestLimitExceeded"), 1)
	if err := cloud.ListSecurityGroups(f2.Ctx(), f2, cloudfake.FakeRegion, set); err == nil || !strings.Contains(err.Error(), "listing security groups in") {
		t.Errorf("list = %v", err)
	}
	f2.Vpcs = f2.Vpcs[:1] // no default VPC
	if _, err := cloud.FindSecurityGroup(f2.Ctx(), f2, n); err == nil || !strings.Contains(err.Error(), "no default VPC") {
		t.Errorf("find without a default VPC = %v", err)
	}
}

func TestCreateSecurityGroupConcurrentRun(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	want := []cloud.Rule{{Port: cloud.MlflowPort, CIDR: "198.51.100.7/32"}}

	// Made meanwhile by this stack's other run: adopted, rules put on it.
	f := cloudfake.NewFakeAWS()
	id := f.AddGroup(n.SecurityGroup, cloudfake.StackTagsFor("demo", time.Now()))
	g := &cloud.SGFound{VpcID: "vpc-0default"}
	must(t, cloud.EnsureSecurityGroup(f.Ctx(), f, g, n, want, nil, newProgress(io.Discard)))
	if g.ID != id || len(f.Groups) != 1 || len(f.Groups[0].SG.IpPermissions) != 1 {
		t.Errorf("found %+v, groups %d", g, len(f.Groups))
	}

	// Made meanwhile by someone else: refused, nothing opened on it.
	f = cloudfake.NewFakeAWS()
	f.AddGroup(n.SecurityGroup, nil)
	err := cloud.EnsureSecurityGroup(f.Ctx(), f, &cloud.SGFound{VpcID: "vpc-0default"}, n, want, nil, newProgress(io.Discard))
	var no *cloud.NotOwnedError
	if !errors.As(err, &no) || f.Count("EC2.AuthorizeSecurityGroupIngress") != 0 {
		t.Errorf("ensure over a look-alike = %v, calls %v", err, f.Calls())
	}

	f = cloudfake.NewFakeAWS()
	f.FailNext("CreateSecurityGroup", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	err = cloud.EnsureSecurityGroup(f.Ctx(), f, &cloud.SGFound{VpcID: "vpc-0default"}, n, want, nil, newProgress(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "creating security group mlstack-demo") || cloud.ErrorCode(err) != "UnauthorizedOperation" {
		t.Errorf("ensure = %v", err)
	}
}

func TestStackInstancesTellsLookalikes(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	if own, others, err := cloud.StackInstances(ctx, f, n, cloud.LiveStates); err != nil || own != nil || others != nil {
		t.Fatalf("no instance: %v %v %v", own, others, err)
	}
	ours := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	fake := f.AddInstance(cloudfake.StackTagsFor("demo", time.Now()), ec2types.InstanceStateNameRunning) // the tag, nothing else
	own, others, err := cloud.StackInstances(ctx, f, n, cloud.LiveStates)
	must(t, err)
	if len(own) != 1 || *own[0].InstanceId != ours || len(others) != 1 || others[0].ID != fake || others[0].Why == "" {
		t.Fatalf("own %v, look-alikes %+v", own, others)
	}
	var no *cloud.NotOwnedError
	if err := others[0].Error("demo"); !errors.As(err, &no) || no.Why != others[0].Why || !strings.Contains(err.Error(), "is tagged mlstack:stack=demo, but") {
		t.Errorf("look-alike error %v", err)
	}

	// Without the stack's group (read already as ""), its own instance is a look-alike too.
	own, others, err = cloud.StackInstancesIn(ctx, f, n, "", cloud.LiveStates)
	must(t, err)
	if len(own) != 0 || len(others) != 2 || whyOf(others, ours) != "its security groups ["+*f.Instance(ours).Inst.SecurityGroups[0].GroupId+"] are not the stack's group alone" {
		t.Errorf("own %v, look-alikes %+v", own, others)
	}

	// An image of another owner is not Canonical's.
	f.Instance(ours).Inst.ImageId = aws.String("ami-evilamd64")
	own, others, err = cloud.StackInstances(ctx, f, n, cloud.LiveStates)
	must(t, err)
	if len(own) != 0 || len(others) != 2 || !strings.Contains(whyOf(others, ours), "image ami-evilamd64 is not Canonical's (owner 666666666666)") {
		t.Errorf("own %v, look-alikes %+v", own, others)
	}
	for _, op := range []string{"DescribeInstances", "DescribeSecurityGroups", "DescribeImages"} {
		f.FailNext(op, cloudfake.AwsErr("RequestLimitExceeded"), 1)
		if _, _, err := cloud.StackInstances(ctx, f, n, cloud.LiveStates); cloud.ErrorCode(err) != "RequestLimitExceeded" {
			t.Errorf("%s failing: %v", op, err)
		}
	}
	f.FailNext("DescribeImages", cloudfake.AwsErr("RequestLimitExceeded"), 1)
	if _, _, err := cloud.StackInstancesIn(ctx, f, n, "sg-1", cloud.LiveStates); cloud.ErrorCode(err) != "RequestLimitExceeded" {
		t.Errorf("in: %v", err)
	}

	// Images EC2 listed in this run answer for the owners: no DescribeImages.
	f.Instance(ours).Inst.ImageId = f.Images[0].ImageId
	insts, err := cloud.FindInstances(ctx, f, "demo", cloud.LiveStates)
	must(t, err)
	f.ResetCalls()
	refs, err := cloud.RefsFor(ctx, f, n, "sg-1", insts[:1], f.Images...)
	if err != nil || refs.ImageOwner[*f.Images[0].ImageId] != cloud.CanonicalOwner || len(f.Calls()) != 0 {
		t.Errorf("refs %+v %v, calls %v", refs, err, f.Calls())
	}
}

func TestRetagEC2(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	id := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	insts, err := cloud.FindInstances(ctx, f, "demo", cloud.LiveStates)
	must(t, err)
	sg := f.AddGroup("mlstack-x", cloudfake.StackTagsFor("x", time.Now()))
	ids := append(cloud.InstanceTagIDs(insts), (&cloud.SGFound{ID: sg}).TagIDs()...)
	must(t, cloud.RetagEC2(ctx, f, ids, cloud.TagExpiresAt, "2031-01-01T00:00:00Z"))
	if cloud.EC2TagMap(f.Instance(id).Inst.Tags)[cloud.TagExpiresAt] != "2031-01-01T00:00:00Z" || f.Count("EC2.CreateTags") != 1 {
		t.Errorf("tags %v, calls %v", f.Instance(id).Inst.Tags, f.Calls())
	}
	f.ResetCalls()
	must(t, cloud.RetagEC2(ctx, f, nil, cloud.TagExpiresAt, "x"))
	if len(f.Calls()) != 0 {
		t.Errorf("retag of nothing called %v", f.Calls())
	}
	if err := cloud.RetagEC2(ctx, f, []string{"key-0gone"}, cloud.TagExpiresAt, "x"); err == nil || !strings.Contains(err.Error(), "moving the expiry of EC2 resources") {
		t.Errorf("retag = %v", err)
	}
}

// whyOf is why the look-alike with id is not the stack's ("" if not listed).
func whyOf(others []cloud.Lookalike, id string) string {
	for _, o := range others {
		if o.ID == id {
			return o.Why
		}
	}
	return ""
}
