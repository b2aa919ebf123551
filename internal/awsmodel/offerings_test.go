package awsmodel_test

import (
	"slices"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/region"
)

// TestOfferingsNameEveryRegion: the generated data names every region of
// mlstack's table (regenerate with go run ./internal/awsmodel/genofferings).
func TestOfferingsNameEveryRegion(t *testing.T) {
	t.Parallel()
	have := awsmodel.OfferingRegions()
	for _, r := range region.Names() {
		if !slices.Contains(have, r) {
			t.Errorf("offerings.txt.gz does not name region %s: regenerate it", r)
		}
	}
}

func TestRegionOffers(t *testing.T) {
	t.Parallel()
	noT2 := []string{"eu-north-1", "af-south-1", "ap-east-1", "ap-south-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
		"ca-west-1", "eu-central-2", "eu-south-1", "eu-south-2", "il-central-1", "me-central-1", "me-south-1"}
	for _, r := range awsmodel.OfferingRegions() {
		t2 := awsmodel.RegionOffers(r, "t2.micro")
		if t2 == slices.Contains(noT2, r) {
			t.Errorf("%s: offers t2.micro = %v", r, t2)
		}
		// moto's data for me-central-1 lists no t family at all (seen
		// 2026-12-07 in moto 5.2.5); AWS's own pages list t3 there.
		if !awsmodel.RegionOffers(r, "t3.micro") && r != "me-central-1" {
			t.Errorf("%s: no t3.micro", r)
		}
		err := awsmodel.DescribeInstanceTypes(r, []string{"t2.micro", "t3.micro"})
		if r == "me-central-1" {
			continue
		}
		if e, _ := err.(*awsmodel.Error); t2 != (err == nil) || err != nil && (e == nil || e.Code != "InvalidInstanceType" ||
			e.Message != "The following supplied instance types do not exist: [t2.micro]") {
			t.Errorf("%s: DescribeInstanceTypes: %v", r, err)
		}
	}
	if awsmodel.RegionOffers("eu-west-3", "x9.huge") {
		t.Error("eu-west-3 offers x9.huge")
	}
	if !awsmodel.RegionOffers("mx-central-1", "x9.huge") {
		t.Error("a region without data should take every type as offered")
	}
}
