package provision

import (
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// launched is the type, subnet, credits and public address of the one live instance.
func launched(t *testing.T, f *cloudfake.FakeAWS) (typ, subnet, credits string, public bool) {
	t.Helper()
	live := f.LiveInstances()
	if len(live) != 1 {
		t.Fatalf("live instances %v, want one", live)
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	i := f.Instance(live[0])
	return string(i.Inst.InstanceType), aws.ToString(i.Inst.SubnetId), i.Credits, aws.ToString(i.Inst.PublicIpAddress) != ""
}

func TestPlacement(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		setup    func(f *cloudfake.FakeAWS)
		typ      string // --instance-type; "" the default
		wantType string
		subnet   string
		credits  string
		say      string // in the progress
	}{
		{"default", nil, "", "t2.micro", "subnet-0a", "", ""},
		{"zone a lacks t2.micro", func(f *cloudfake.FakeAWS) { f.Offered["t2.micro"] = []string{"eu-west-3b", "eu-west-3c"} }, "", "t2.micro", "subnet-0b", "", ""},
		{"region without t2", func(f *cloudfake.FakeAWS) { f.Plan.NoT2 = true }, "", "t3.micro", "subnet-0a", "standard",
			"t2.micro is not offered in eu-west-3: launching t3.micro with standard CPU credits instead"},
		{"free plan refuses t2.micro", func(f *cloudfake.FakeAWS) { f.Plan.FreeTier = []string{"t3.micro"} }, "", "t3.micro", "subnet-0a", "standard",
			"t2.micro is not eligible for this account's free plan: launching t3.micro with standard CPU credits instead"},
		{"explicit type", nil, "t3.micro", "t3.micro", "subnet-0a", "", ""},
		// EC2 there answers InvalidInstanceType for t2.micro (the model's
		// offering data): the default falls back before anything is made.
		{"eu-north-1: no t2 family at all", func(f *cloudfake.FakeAWS) { f.Region = "eu-north-1" }, "", "t3.micro", "subnet-0a", "standard",
			"t2.micro is not offered in eu-north-1: launching t3.micro with standard CPU credits instead (bursts never bill beyond the hourly price)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			if c.setup != nil {
				c.setup(f)
			}
			o, _, log := upOpts(t.TempDir(), "demo")
			o.InstanceType = c.typ
			mustUp(t, f, o)
			typ, subnet, credits, public := launched(t, f)
			if typ != c.wantType || subnet != c.subnet || credits != c.credits || !public {
				t.Errorf("launched %s in %s with credits %q, public address %v; want %s in %s with %q", typ, subnet, credits, public, c.wantType, c.subnet, c.credits)
			}
			if c.say != "" && strings.Count(log.String(), c.say) != 1 {
				t.Errorf("progress does not say once %q:\n%s", c.say, log)
			}
			if c.say == "" && strings.Contains(log.String(), "instead") {
				t.Errorf("progress speaks of a fallback:\n%s", log)
			}
		})
	}
}

// TestPlacementRefusals: what cannot run is said before anything is
// created, where it can be known before; an explicit type never falls back.
func TestPlacementRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		setup     func(f *cloudfake.FakeAWS)
		typ       string
		want      string
		usage     bool
		launchErr bool // known only when RunInstances answers
	}{
		{"explicit type not offered", func(f *cloudfake.FakeAWS) { delete(f.Offered, "t3.micro") }, "t3.micro", "instance type t3.micro is offered in no availability zone", true, false},
		{"neither type offered", func(f *cloudfake.FakeAWS) { delete(f.Offered, "t2.micro"); delete(f.Offered, "t3.micro") }, "", "neither t2.micro nor t3.micro", true, false},
		{"no default subnet", func(f *cloudfake.FakeAWS) { f.Subnets = nil }, "", "no default subnet", true, false},
		{"zones without subnets", func(f *cloudfake.FakeAWS) {
			f.Offered["t2.micro"] = []string{"eu-west-3z"}
			f.Offered["t3.micro"] = []string{"eu-west-3z"}
		}, "", "neither", true, false},
		{"unknown type", nil, "zz9.mega", "does not exist", true, false},
		{"explicit t2 where the region has none", func(f *cloudfake.FakeAWS) { f.Region = "eu-north-1" }, "t2.micro",
			`instance type "t2.micro" does not exist in eu-north-1`, true, false},
		{"explicit type refused by the free plan", func(f *cloudfake.FakeAWS) { f.Plan.FreeTier = []string{"t3.micro"} }, "t2.micro", "pass --instance-type t3.micro", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			if c.setup != nil {
				c.setup(f)
			}
			o, _, _ := upOpts(t.TempDir(), "demo")
			o.InstanceType = c.typ
			err := Up(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || cloud.IsUsage(err) != c.usage {
				t.Fatalf("up = %v; want %q (usage error: %v)", err, c.want, c.usage)
			}
			if !c.launchErr && len(f.Mutating()) > 0 {
				t.Errorf("mutating calls before the refusal: %v", f.Mutating())
			}
			if c.launchErr && (f.Count("EC2.RunInstances") != 1 || len(f.LiveInstances()) != 0) {
				t.Errorf("RunInstances %d times, live %v; want one refused call", f.Count("EC2.RunInstances"), f.LiveInstances())
			}
		})
	}
}

// TestUpIgnoresShuttingDown: an instance on its way out is gone for up,
// which launches a new one; down still waits for it.
func TestUpIgnoresShuttingDown(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	old := f.LiveInstances()[0]
	f.SetInstanceState(old, ec2types.InstanceStateNameShuttingDown)
	o, _, _ := upOpts(dir, "demo")
	mustUp(t, f, o)
	live := f.LiveInstances()
	if len(live) != 2 || f.Count("EC2.RunInstances") == 0 {
		t.Fatalf("live %v after up: want the shutting-down one and a new one", live)
	}
	if f.Count("EC2.TerminateInstances") != 0 {
		t.Error("up terminated an instance on its way out as a duplicate")
	}
}
