package cloud_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// inRegion makes the fake answer as EC2 in region (its zones stay eu-west-3's).
func inRegion(region string) func(f *cloudfake.FakeAWS) {
	return func(f *cloudfake.FakeAWS) { f.Region = region }
}

func TestPlacements(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		edit     func(f *cloudfake.FakeAWS)
		asked    string
		explicit bool
		want     string // type@zone/credits(why) per placement
		wantErr  string
	}{
		{"default type, fallback behind it", nil, "t2.micro", false,
			"t2.micro@eu-west-3a std=false () | t3.micro@eu-west-3a std=true (t2.micro is not eligible for this account's free plan)", ""},
		{"explicit type: no fallback", nil, "t4g.small", true, "t4g.small@eu-west-3a std=false ()", ""},
		{"the region offers no t2", func(f *cloudfake.FakeAWS) { f.Plan = awsmodel.Plan{NoT2: true} }, "t2.micro", false,
			"t3.micro@eu-west-3a std=true (t2.micro is not offered in eu-west-3)", ""},
		{"offered only where no default subnet is", func(f *cloudfake.FakeAWS) {
			f.Offered["t2.micro"] = []string{"eu-west-3z"}
			f.Offered["t3.micro"] = []string{"eu-west-3b"}
		}, "t2.micro", false, "t3.micro@eu-west-3b std=true (t2.micro is not offered in eu-west-3)", ""},
		{"explicit type nowhere", func(f *cloudfake.FakeAWS) { f.Offered["t4g.small"] = nil }, "t4g.small", true, "",
			"instance type t4g.small is offered in no availability zone of eu-west-3 that has a default subnet"},
		{"neither type anywhere", func(f *cloudfake.FakeAWS) { f.Plan = awsmodel.Plan{NoT2: true}; f.Offered["t3.micro"] = nil }, "t2.micro", false, "",
			"neither t2.micro nor t3.micro is offered in any availability zone"},
		{"no default subnet", func(f *cloudfake.FakeAWS) { f.Subnets = nil }, "t2.micro", false, "", "this region has no default subnet"},
		{"unknown type", nil, "x9.huge", true, "", `instance type "x9.huge" does not exist in eu-west-3: pass --instance-type`},
		{"mac only", inRegion("eu-north-1"), "mac1.metal", true, "", "mlstack needs x86_64 or arm64"},
		{"a region without t2: the default falls back", inRegion("eu-north-1"), "t2.micro", false,
			"t3.micro@eu-west-3a std=true (t2.micro is not offered in eu-north-1)", ""},
		{"a region without t2: an explicit t2 is refused", inRegion("eu-north-1"), "t2.micro", true, "",
			`instance type "t2.micro" does not exist in eu-north-1: pass --instance-type with a type the region offers`},
		{"a region with no t family in the data", inRegion("me-central-1"), "t2.micro", false, "",
			`instance type "t3.micro" does not exist in me-central-1`},
	} {
		f := cloudfake.NewFakeAWS()
		if c.edit != nil {
			c.edit(f)
		}
		places, _, err := cloud.Placements(f.Ctx(), f, c.asked, c.explicit, f.Region)
		if c.wantErr != "" {
			if !cloud.IsUsage(err) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		must(t, err)
		var got []string
		for _, p := range places {
			got = append(got, fmt.Sprintf("%s@%s std=%v (%s)", p.InstanceType, p.Zone, p.StandardCredits, p.Why))
		}
		if strings.Join(got, " | ") != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, strings.Join(got, " | "), c.want)
		}
	}
	for _, c := range []struct{ op, want string }{
		{"DescribeInstanceTypes", "looking up instance type t2.micro"},
		{"DescribeSubnets", "listing the default subnets"},
		{"DescribeInstanceTypeOfferings", "listing where t2.micro and t3.micro is offered in eu-west-3"},
	} {
		f := cloudfake.NewFakeAWS()
		f.FailNext(c.op, cloudfake.AwsErr("RequestLimitExceeded"), 1)
		if _, _, err := cloud.Placements(f.Ctx(), f, "t2.micro", false, f.Region); err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "RequestLimitExceeded" {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
}
