package region

import "testing"

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"eu-west-3", true}, {"us-east-1", true}, {"ap-southeast-5", true}, {"us-gov-west-1", true},
		{"cn-northwest-1", true}, {"eusc-de-east-1", true}, {"us-isof-south-1", true}, {"il-central-1", true},
		{"", false}, {"mars-1", false}, {"EU-WEST-3", false}, {"eu-west", false}, {"eu-west-100", false}, {"eu_west_3", false},
	} {
		if got := Valid(tc.name); got != tc.ok {
			t.Errorf("Valid(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		region, partition, owner, principal string
	}{
		{"eu-west-3", "aws", "099720109477", "ec2.amazonaws.com"},
		{"us-east-1", "aws", "099720109477", "ec2.amazonaws.com"},
		{"cn-north-1", "aws-cn", "837727238323", "ec2.amazonaws.com.cn"},
		{"cn-northwest-1", "aws-cn", "837727238323", "ec2.amazonaws.com.cn"},
		{"us-gov-west-1", "aws-us-gov", "513442679011", "ec2.amazonaws.com"},
		{"eusc-de-east-1", "aws-eusc", "", "ec2.amazonaws.com"},
	} {
		p := Of(tc.region)
		if p.Name != tc.partition || p.CanonicalOwner != tc.owner || p.EC2Principal != tc.principal {
			t.Errorf("Of(%q) = %+v", tc.region, p)
		}
	}
}
