package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func lsOpts(output string, all bool) (LsOptions, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return LsOptions{Streams: Streams{Out: out}, Output: output, AllRegions: all}, out
}

// lsFixture: stacks "alpha" (with a TTL) and "beta" (instance stopped) in
// eu-west-3, "gamma" in us-east-1, and things ls must not list.
func lsFixture(t *testing.T) *cloudfake.FakeAWS {
	t.Helper()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, _, _ := upOpts(dir, "alpha")
	o.TTL = "3h"
	mustUp(t, f, o)
	o, _, _ = upOpts(dir, "beta")
	mustUp(t, f, o)
	f.RetagAll("beta", cloud.TagCreatedAt, "2026-01-02T03:04:05Z")
	f.SetInstanceState(f.LiveInstances()[1], ec2types.InstanceStateNameStopped)

	// gamma lives in us-east-1: its EC2 resources are in that region's
	// fake, its IAM user says so, and its bucket's name ends with it.
	east := f.InRegion("us-east-1")
	gt := cloud.StackTags("gamma", "us-east-1", cloudfake.FakeOwner, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), 0)
	east.AddStackInstance("gamma", ec2types.InstanceStateNameRunning)
	east.AddKeyPair("mlstack-gamma", gt)
	f.AddUser("mlstack-gamma", gt)
	f.AddBucket("mlstack-gamma-"+cloudfake.FakeAccount+"-us-east-1", gt)

	// Not stacks: untagged, badly tagged, another account's or unrelated names.
	f.AddBucket("mlstack-untagged-"+cloudfake.FakeAccount+"-eu-west-3", nil)
	f.AddBucket("mlstack-stray-"+cloudfake.FakeOtherAccount+"-eu-west-3", cloudfake.StackTagsFor("stray", time.Now()))
	f.AddBucket("data-lake", cloudfake.StackTagsFor("lake", time.Now()))
	f.AddInstance(map[string]string{cloud.TagStack: "Not A Stack"}, ec2types.InstanceStateNameRunning)
	f.AddInstance(cloudfake.StackTagsFor("ghost", time.Now()), ec2types.InstanceStateNameTerminated)
	f.ResetCalls()
	return f
}

func TestLsTable(t *testing.T) {
	t.Parallel()
	f := lsFixture(t)
	o, out := lsOpts("", false)
	if err := Ls(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("ls:\n%s", out)
	}
	if strings.Join(strings.Fields(lines[0]), " ") != "STACK REGION OWNER CREATED EXPIRES INSTANCE TRACKING URI" {
		t.Errorf("header %q", lines[0])
	}
	alpha, beta := strings.Fields(lines[1]), strings.Fields(lines[2])
	if len(alpha) != 7 || alpha[0] != "alpha" || alpha[1] != "eu-west-3" || alpha[2] != cloudfake.FakeOwner || alpha[4] == "-" || alpha[5] != "running" ||
		!strings.HasPrefix(alpha[6], "https://ec2-") {
		t.Errorf("alpha row %q", lines[1])
	}
	if len(beta) != 7 || beta[0] != "beta" || beta[3] != "2026-01-02T03:04:05Z" || beta[4] != "-" || beta[5] != "stopped" || beta[6] != "-" {
		t.Errorf("beta row %q", lines[2])
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("ls made mutating calls %v", m)
	}
}

func TestLsJSONAllRegions(t *testing.T) {
	t.Parallel()
	f := lsFixture(t)
	o, out := lsOpts("json", true)
	if err := Ls(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	var stacks []cloud.StackJSON
	if err := json.Unmarshal(out.Bytes(), &stacks); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if len(stacks) != 3 {
		t.Fatalf("stacks %+v", stacks)
	}
	a, b, g := stacks[0], stacks[1], stacks[2]
	if a.Stack != "alpha" || a.Region != "eu-west-3" || a.Account != cloudfake.FakeAccount || len(a.Resources) != 6 || a.ExpiresAt == nil ||
		a.Instance == nil || a.Instance.State != "running" || a.TrackingURI == nil || a.Health != cloud.HealthNotChecked ||
		len(a.AllowedCIDRs) != 1 || a.CostPerMonthUSD == nil {
		t.Errorf("alpha %+v", a)
	}
	if b.Stack != "beta" || b.CreatedAt == nil || !b.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) ||
		b.Instance == nil || b.Instance.State != "stopped" || b.TrackingURI != nil {
		t.Errorf("beta %+v", b)
	}
	// gamma: instance, its group, key pair, user and bucket, all placed in us-east-1.
	if g.Stack != "gamma" || g.Region != "us-east-1" || len(g.Resources) != 5 || g.Owner == nil || *g.Owner != cloudfake.FakeOwner || g.Orphan ||
		g.Instance == nil || g.Instance.State != "running" || g.CreatedAt == nil || !g.CreatedAt.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("gamma %+v", g)
	}
	for _, r := range a.Resources {
		if kindLabels[r.Kind] == "" {
			t.Errorf("alpha resource %+v: want a machine kind", r)
		}
	}
	if f.Count("EC2.DescribeRegions") != 1 {
		t.Errorf("calls %v", f.Calls())
	}
	if strings.Contains(out.String(), "expires_at") != true {
		t.Error("json lacks expires_at for the stack with a TTL")
	}
}

// TestLsEmpty: no stacks is said on stderr; stdout stays empty (or []).
func TestLsEmpty(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	var log bytes.Buffer
	o, out := lsOpts("table", false)
	o.Log = &log
	if err := Ls(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" || log.String() != "  no stacks in eu-west-3\n" {
		t.Errorf("ls = %q, stderr %q", out, log.String())
	}
	log.Reset()
	o, out = lsOpts("table", true)
	o.Log = &log
	if err := Ls(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" || log.String() != "  no stacks in eu-west-3, us-east-1\n" {
		t.Errorf("ls --all-regions = %q, stderr %q", out, log.String())
	}
	o, out = lsOpts("json", false)
	if err := Ls(f.Ctx(), o); err != nil || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("ls json = %v %q", err, out)
	}
}

func TestLsErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ op, want string }{
		{"ListUsers", "listing IAM users under /mlstack/"},
		{"GetUser", "reading IAM user mlstack-alpha"},
		{"ListRoles", "listing IAM roles under /mlstack/"},
		{"GetRole", "reading IAM role mlstack-alpha-server"},
		{"ListBuckets", "listing S3 buckets"},
		{"GetBucketTagging", "reading tags of S3 bucket mlstack-alpha-"},
		{"DescribeInstances", "listing instances in eu-west-3"},
		{"DescribeSecurityGroups", "listing security groups in eu-west-3"},
		{"DescribeKeyPairs", "listing key pairs in eu-west-3"},
		{"DescribeRegions", "listing regions"},
	} {
		t.Run(c.op, func(t *testing.T) {
			f := lsFixture(t)
			f.FailNext(c.op, cloudfake.AwsErr("AccessDenied"), 1)
			o, out := lsOpts("", true)
			err := Ls(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ls = %v, want %q", err, c.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on an error", out)
			}
		})
	}
	t.Run("entities vanishing while listed", func(t *testing.T) {
		f := lsFixture(t)
		f.FailNext("GetUser", cloudfake.AwsErr("NoSuchEntity"), -1)
		f.FailNext("GetRole", cloudfake.AwsErr("NoSuchEntity"), -1)
		f.FailNext("GetBucketTagging", cloudfake.AwsErr("NoSuchBucket"), -1)
		o, out := lsOpts("json", false)
		if err := Ls(f.Ctx(), o); err != nil {
			t.Fatal(err)
		}
		var stacks []cloud.StackJSON
		must(t, json.Unmarshal(out.Bytes(), &stacks))
		if len(stacks) != 2 || len(stacks[0].Resources) != 3 {
			t.Errorf("stacks %+v", stacks)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		f := newInstalledFake(t)
		for _, o := range []LsOptions{{Output: "csv"}, {AWS: cloud.AWS{Region: "x"}}} {
			if err := Ls(f.Ctx(), o); !cloud.IsUsage(err) {
				t.Errorf("ls(%+v) = %v", o, err)
			}
		}
		if f.Connects != 0 {
			t.Error("bad input reached AWS")
		}
	})
}

func TestLsTableExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	stacks := []cloud.StackInfo{
		{Stack: "past", Region: "eu-west-3", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute), Instance: &cloud.InstanceInfo{State: "running"}, TrackingURI: "http://h:5000"},
		{Stack: "future", Region: "eu-west-3", ExpiresAt: now.Add(time.Hour)},
	}
	var b bytes.Buffer
	if err := lsTable(&b, stacks, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if !strings.Contains(lines[1], "2026-05-01T11:59:00Z (expired)") || !strings.Contains(lines[1], "http://h:5000") {
		t.Errorf("past: %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[2] != "-" || f[3] != "-" || f[4] != "2026-05-01T13:00:00Z" || f[6] != "-" {
		t.Errorf("future: %q", lines[2])
	}
}

// ls lists every stack when IAM pages: the 101st stack's user (or role,
// what a half-deleted stack may have left) is on the second page of
// ListUsers or ListRoles (issue 25).
func TestLsPastIAMsFirstPage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind string
		add  func(f *cloudfake.FakeAWS, stack string, tags map[string]string)
	}{
		{"users", func(f *cloudfake.FakeAWS, s string, tags map[string]string) { f.AddUser("mlstack-"+s, tags) }},
		{"roles", func(f *cloudfake.FakeAWS, s string, tags map[string]string) { f.AddRole("mlstack-"+s+"-server", tags) }},
	} {
		t.Run(c.kind, func(t *testing.T) {
			t.Parallel()
			f := cloudfake.NewFakeAWS()
			for i := range 101 {
				s := fmt.Sprintf("s%03d", i)
				c.add(f, s, cloud.StackTags(s, cloudfake.FakeRegion, cloudfake.FakeOwner, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), 0))
			}
			o, out := lsOpts("", false)
			if err := Ls(f.Ctx(), o); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if len(lines) != 102 || !strings.HasPrefix(lines[101], "s100 ") {
				t.Errorf("ls listed %d stacks, the last %q", len(lines)-1, lines[len(lines)-1])
			}
		})
	}
}
