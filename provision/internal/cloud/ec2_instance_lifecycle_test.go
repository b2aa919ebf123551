package cloud_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// stackLaunch readies f for a launch of the demo stack (key pair, group,
// profile) and returns the input of EnsureInstance, placed in f's
// placements for the default type.
func stackLaunch(t *testing.T, f *cloudfake.FakeAWS) cloud.EnsureInstanceInput {
	t.Helper()
	n := cloud.NamesFor("demo", f.Account, f.Region)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	f.AddKeyPair(n.KeyPair, tags)
	sg := f.AddGroup(n.SecurityGroup, tags)
	f.AddProfile(n.Profile, tags, n.Role)
	places, arch, err := cloud.Placements(f.Ctx(), f, "t2.micro", false, f.Region)
	must(t, err)
	img, _, err := cloud.UbuntuImage(f.Ctx(), f, arch, f.Region)
	must(t, err)
	nonces := 0
	return cloud.EnsureInstanceInput{
		Places: places,
		Launch: cloud.LaunchInput{
			Names: n, Image: img, SGID: sg, UserData: []byte("#cloud-config\n"), Tags: tags,
			RetryFor: time.Second, Log: newProgress(io.Discard),
		},
		RenewNonce: func() (string, error) { nonces++; return strings.Repeat("n", nonces), nil },
		Wait:       time.Second,
	}
}

func TestEnsureInstanceLaunchesThenLeavesAlone(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	in := stackLaunch(t, f)
	n := in.Launch.Names
	found, err := cloud.FindInstances(ctx, f, "demo", cloud.UsableStates)
	must(t, err)
	img := in.Launch.Image
	if p := cloud.InstancesPlan(found, n, img, in.Places[0]); len(p) != 1 || !strings.HasPrefix(p[0].Text, "launch instance mlstack-demo from "+*img.ImageId) {
		t.Fatalf("plan %+v", p)
	}
	in.Found = found
	inst, err := cloud.EnsureInstance(ctx, f, in)
	must(t, err)
	if cloud.StateOf(inst) != ec2types.InstanceStateNameRunning || cloud.TrackingURI(inst) == "" {
		t.Fatalf("instance %+v", inst)
	}
	fi := f.Instance(*inst.InstanceId)
	if aws.ToString(fi.Inst.KeyName) != n.KeyPair || aws.ToString(fi.Inst.IamInstanceProfile.Arn) != n.ProfileARN() ||
		cloud.EC2TagMap(fi.Inst.Tags)[cloud.TagStack] != "demo" || cloud.EC2TagMap(fi.Inst.Tags)["Name"] != n.Instance {
		t.Errorf("launched %+v", fi.Inst)
	}
	if !strings.Contains(cloudfake.UserDataB64Text(t, fi.UserData), "#cloud-config") {
		t.Errorf("user-data %q", fi.UserData)
	}

	// up again: the running server is kept, nothing is called beyond the read.
	found, err = cloud.FindInstances(ctx, f, "demo", cloud.UsableStates)
	must(t, err)
	if len(found) != 1 || len(cloud.InstancesPlan(found, n, img, in.Places[0])) != 0 {
		t.Fatalf("found %d, plan %+v", len(found), cloud.InstancesPlan(found, n, img, in.Places[0]))
	}
	in.Found = found
	f.ResetCalls()
	again, err := cloud.EnsureInstance(ctx, f, in)
	must(t, err)
	if *again.InstanceId != *inst.InstanceId || len(f.Calls()) != 0 {
		t.Errorf("kept %s, calls %v", *again.InstanceId, f.Calls())
	}
}

func TestEnsureInstanceKeepsTheOldestAndStartsIt(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	in := stackLaunch(t, f)
	n := in.Launch.Names
	oldest := f.AddStackInstance("demo", ec2types.InstanceStateNameStopped)
	dup1 := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	dup2 := f.AddStackInstance("demo", ec2types.InstanceStateNamePending)
	f.AddStackInstance("other", ec2types.InstanceStateNameRunning)
	f.AddInstance(map[string]string{cloud.TagStack: "demo"}, ec2types.InstanceStateNameTerminated)

	found, err := cloud.FindInstances(ctx, f, "demo", cloud.UsableStates)
	must(t, err)
	var ids []string
	for _, i := range found {
		ids = append(ids, *i.InstanceId)
	}
	if strings.Join(ids, " ") != oldest+" "+dup1+" "+dup2 {
		t.Fatalf("found %v, want oldest first", ids)
	}
	p := cloud.InstancesPlan(found, n, in.Launch.Image, in.Places[0])
	if len(p) != 2 || p[0].Text != "terminate 2 duplicate instances" || p[1].Text != "start stopped instance "+oldest {
		t.Errorf("plan %+v", p)
	}
	in.Found = found
	inst, err := cloud.EnsureInstance(ctx, f, in)
	must(t, err)
	if *inst.InstanceId != oldest || cloud.StateOf(inst) != ec2types.InstanceStateNameRunning {
		t.Errorf("kept %+v", inst)
	}
	if live := f.LiveInstances(); len(live) != 2 || live[0] != oldest {
		t.Errorf("live %v", live)
	}
	if f.Count("EC2.RunInstances") != 0 || f.Count("EC2.StartInstances") != 1 {
		t.Errorf("calls %v", f.Calls())
	}
}

func TestEnsureInstanceFallsBackOnTheFreePlan(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	f.Plan = awsmodel.Plan{FreeTier: []string{"t3.micro"}}
	in := stackLaunch(t, f)
	if len(in.Places) != 2 || in.Places[1].InstanceType != "t3.micro" {
		t.Fatalf("places %+v", in.Places)
	}
	var log strings.Builder
	in.Launch.Log = newProgress(&log)
	inst, err := cloud.EnsureInstance(f.Ctx(), f, in)
	must(t, err)
	if inst.InstanceType != "t3.micro" || f.Instance(*inst.InstanceId).Credits != "standard" {
		t.Errorf("launched %s with credits %q", inst.InstanceType, f.Instance(*inst.InstanceId).Credits)
	}
	if !strings.Contains(log.String(), "t2.micro is not eligible for this account's free plan") {
		t.Errorf("log %q", log.String())
	}

	// An explicit type the free plan refuses: no fallback, and the error says what to pass.
	f = cloudfake.NewFakeAWS()
	f.Plan = awsmodel.Plan{FreeTier: []string{"t3.micro"}}
	in = stackLaunch(t, f)
	in.Places = in.Places[:1]
	_, err = cloud.EnsureInstance(f.Ctx(), f, in)
	if err == nil || !strings.Contains(err.Error(), "pass --instance-type t3.micro") || cloud.ErrorCode(err) != "InvalidParameterCombination" {
		t.Errorf("ensure = %v", err)
	}
	if len(f.LiveInstances()) != 0 {
		t.Errorf("launched %v", f.LiveInstances())
	}
}

func TestEnsureInstanceRenewsAStaleToken(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	in := stackLaunch(t, f)
	first, err := cloud.EnsureInstance(f.Ctx(), f, in)
	must(t, err)
	// The server died; its token still answers with it, terminated.
	must(t, cloud.Terminate(f.Ctx(), f, []string{*first.InstanceId}, time.Second, newProgress(io.Discard)))
	second, err := cloud.EnsureInstance(f.Ctx(), f, in)
	must(t, err)
	if *second.InstanceId == *first.InstanceId || f.Count("EC2.RunInstances") != 3 {
		t.Errorf("relaunched %s (first %s), calls %v", *second.InstanceId, *first.InstanceId, f.Calls())
	}

	// A nonce that cannot be saved stops the launch.
	must(t, cloud.Terminate(f.Ctx(), f, []string{*second.InstanceId}, 0, newProgress(io.Discard)))
	in.Launch.Nonce = "n"
	in.RenewNonce = func() (string, error) { return "", errors.New("state not writable") }
	if _, err := cloud.EnsureInstance(f.Ctx(), f, in); err == nil || !strings.Contains(err.Error(), "state not writable") {
		t.Errorf("ensure = %v", err)
	}
}

func TestEnsureInstanceFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		state ec2types.InstanceStateName // of the stack's instance before up; "" : none
		op    string
		want  string
	}{
		{"launch refused", "", "RunInstances", "launching instance mlstack-demo"},
		{"start refused", ec2types.InstanceStateNameStopped, "StartInstances", "starting instance"},
		{"duplicate not terminated", ec2types.InstanceStateNameRunning, "TerminateInstances", "terminating instance"},
		{"poll fails", "", "DescribeInstances", "waiting for instance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := cloudfake.NewFakeAWS()
			in := stackLaunch(t, f)
			if c.state != "" {
				f.AddStackInstance("demo", c.state)
				f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
				found, err := cloud.FindInstances(f.Ctx(), f, "demo", cloud.UsableStates)
				must(t, err)
				in.Found = found
				if c.op != "TerminateInstances" {
					in.Found = found[:1]
				}
			}
			f.FailNext(c.op, cloudfake.AwsErr("UnauthorizedOperation"), -1)
			_, err := cloud.EnsureInstance(f.Ctx(), f, in)
			if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "UnauthorizedOperation" {
				t.Errorf("ensure = %v, want %q", err, c.want)
			}
		})
	}

	// A server that dies while we wait for it is an error, not a wait.
	f := cloudfake.NewFakeAWS()
	in := stackLaunch(t, f)
	id := f.AddStackInstance("demo", ec2types.InstanceStateNameStopping)
	found, err := cloud.FindInstances(f.Ctx(), f, "demo", cloud.UsableStates)
	must(t, err)
	in.Found = found
	f.SetInstanceState(id, ec2types.InstanceStateNameTerminated)
	if _, err := cloud.EnsureInstance(f.Ctx(), f, in); err == nil || !strings.Contains(err.Error(), "it is terminated instead of running") {
		t.Errorf("ensure = %v", err)
	}
	// One that never shows up in listings is waited for until the wait is over.
	f = cloudfake.NewFakeAWS()
	f.Consistency = awsmodel.Consistency{For: 1000}
	in = stackLaunch(t, f)
	in.Wait = 10 * time.Millisecond
	_, err = cloud.EnsureInstance(f.Ctx(), f, in)
	if err == nil || !strings.Contains(err.Error(), "gave up after 10ms (last seen: not listed yet)") {
		t.Errorf("ensure = %v", err)
	}
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	a := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	b := f.AddStackInstance("demo", ec2types.InstanceStateNameStopped)
	var log strings.Builder
	must(t, cloud.Terminate(ctx, f, []string{a, b}, time.Second, newProgress(&log)))
	if len(f.LiveInstances()) != 0 || !strings.Contains(log.String(), "instances "+a+", "+b+" terminated") {
		t.Errorf("live %v, log %q", f.LiveInstances(), log.String())
	}
	// Nothing to end, or ids EC2 no longer knows: done.
	f.ResetCalls()
	must(t, cloud.Terminate(ctx, f, nil, time.Second, newProgress(io.Discard)))
	if len(f.Calls()) != 0 {
		t.Errorf("terminate of nothing called %v", f.Calls())
	}
	must(t, cloud.Terminate(ctx, f, []string{"i-0gone"}, time.Second, newProgress(io.Discard)))

	// A refusal whose termination happened anyway (a lost answer) is done;
	// one that did not happen is the error.
	c := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	f.FailAfter("TerminateInstances", cloudfake.AwsErr("InternalError"), 1)
	must(t, cloud.Terminate(ctx, f, []string{c}, 0, newProgress(io.Discard)))
	d := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	f.FailNext("TerminateInstances", cloudfake.AwsErr("InternalError"), 1)
	err := cloud.Terminate(ctx, f, []string{d}, 0, newProgress(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "terminating instance "+d) || cloud.ErrorCode(err) != "InternalError" {
		t.Errorf("terminate = %v", err)
	}
	f.FailNext("TerminateInstances", cloudfake.AwsErr("InternalError"), 1)
	f.FailNext("DescribeInstances", cloudfake.AwsErr("InternalError"), 1)
	if err := cloud.Terminate(ctx, f, []string{d}, 0, newProgress(io.Discard)); cloud.ErrorCode(err) != "InternalError" {
		t.Errorf("terminate with an unreadable state = %v", err)
	}

	// EC2 slow to wind down: the wait gives up, naming what it last saw.
	f.Terms = awsmodel.Terminations{Slow: 1000}
	err = cloud.Terminate(ctx, f, []string{d}, 5*time.Millisecond, newProgress(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), d+" shutting-down") {
		t.Errorf("terminate = %v", err)
	}
}

func TestListInstancesOnlyWithTheStackProfile(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	f.PageSize = 1
	demo := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	stopped := f.AddStackInstance("two", ec2types.InstanceStateNameStopped)
	f.AddInstance(cloudfake.StackTagsFor("fake", time.Now()), ec2types.InstanceStateNameRunning) // tagged, no profile
	f.AddStackInstance("gone", ec2types.InstanceStateNameTerminated)
	set := cloud.NewStackSet(cloudfake.FakeAccount)
	must(t, cloud.ListInstances(f.Ctx(), f, cloudfake.FakeAccount, cloudfake.FakeRegion, set))
	got := set.Sorted()
	if len(got) != 2 || got[0].Stack != "demo" || got[1].Stack != "two" {
		t.Fatalf("listed %+v", got)
	}
	if got[0].Instance == nil || got[0].Instance.ID != demo || got[0].TrackingURI == "" {
		t.Errorf("demo %+v", got[0])
	}
	if got[1].Instance.ID != stopped || got[1].Instance.State != "stopped" || got[1].TrackingURI != "" {
		t.Errorf("two %+v %+v", got[1], got[1].Instance)
	}
	f.FailNext("DescribeInstances", cloudfake.AwsErr("RequestLimitExceeded"), 1)
	if err := cloud.ListInstances(f.Ctx(), f, cloudfake.FakeAccount, cloudfake.FakeRegion, set); err == nil || !strings.Contains(err.Error(), "listing instances in "+cloudfake.FakeRegion) {
		t.Errorf("list = %v", err)
	}
	f.FailNext("DescribeInstances", cloudfake.AwsErr("RequestLimitExceeded"), 1)
	if _, err := cloud.FindInstances(f.Ctx(), f, "demo", cloud.LiveStates); err == nil || !strings.Contains(err.Error(), "listing instances of stack demo") {
		t.Errorf("find = %v", err)
	}
}

func TestInstanceInventoryAndTagIDs(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	id := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	found, err := cloud.FindInstances(f.Ctx(), f, "demo", cloud.LiveStates)
	must(t, err)
	rows := cloud.InstanceInventory(found)
	if len(rows) != 1 || rows[0].ID != id || rows[0].Name != "mlstack-demo" || rows[0].State != "running" || rows[0].Kind != cloud.KindInstance {
		t.Errorf("rows %+v", rows)
	}
	ids := cloud.InstanceTagIDs(found)
	if len(ids) != 2 || ids[0] != id || !strings.HasPrefix(ids[1], "vol-") {
		t.Errorf("tag ids %v", ids)
	}
	if cloud.InstanceInventory(nil) != nil || cloud.InstanceTagIDs(nil) != nil {
		t.Error("rows of no instance")
	}
}

func TestConsoleOutput(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	id := f.AddStackInstance("demo", ec2types.InstanceStateNameRunning)
	f.Console[id] = "boot\r\nmlstack ready\r\n"
	// t2 is Xen: the latest output is refused, the published buffer read.
	out, err := cloud.ConsoleOutput(f.Ctx(), f, id)
	if err != nil || out != "boot\nmlstack ready\n" || f.Count("EC2.GetConsoleOutput") != 2 {
		t.Errorf("console %q %v, calls %v", out, err, f.Calls())
	}
	f.Instance(id).Inst.InstanceType = "t3.micro"
	f.ResetCalls()
	if out, err := cloud.ConsoleOutput(f.Ctx(), f, id); err != nil || out != "boot\nmlstack ready\n" || f.Count("EC2.GetConsoleOutput") != 1 {
		t.Errorf("console %q %v, calls %v", out, err, f.Calls())
	}
	if _, err := cloud.ConsoleOutput(f.Ctx(), f, "i-0gone"); err == nil || cloud.ErrorCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("console of a gone instance: %v", err)
	}
}

// TestTerminateRefusedUnlisted: a refused termination of an instance EC2
// does not list yet (just launched) is the error, not "gone": it still runs.
func TestTerminateRefusedUnlisted(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	f.Consistency = awsmodel.Consistency{For: 1000}
	in := stackLaunch(t, f)
	id, err := cloud.LaunchInstance(f.Ctx(), f, in.Launch)
	must(t, err)
	f.FailNext("TerminateInstances", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	err = cloud.Terminate(f.Ctx(), f, []string{id}, 0, newProgress(io.Discard))
	if cloud.ErrorCode(err) != "UnauthorizedOperation" {
		t.Errorf("terminate = %v, want the refusal", err)
	}
}
