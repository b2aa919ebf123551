package cloud

// Where the server runs: an instance type the region offers — t2.micro by
// default, t3.micro where t2.micro is not offered or the account's free plan
// refuses it — in a default subnet of an availability zone that offers it.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fallbackInstanceType stands in for the default type. Launched with
// standard credits, its bursts never bill beyond the hourly price.
const fallbackInstanceType = "t3.micro"

// typesAPI describes instance types.
type typesAPI interface {
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
}

// placementAPI is the part of EC2 that choosing a type and subnet needs.
type placementAPI interface {
	typesAPI
	DescribeInstanceTypeOfferings(context.Context, *ec2.DescribeInstanceTypeOfferingsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
}

// Placement is one way to launch the server.
type Placement struct {
	InstanceType    string
	SubnetID, Zone  string
	StandardCredits bool   // CreditSpecification standard (the t3 fallback)
	Why             string // why this is not the asked type ("" when it is)
}

// Placements lists where the server can run, best first: the asked type,
// then, for the default type only, the fallback (used when RunInstances
// refuses the first for the free plan, or first when the region has no
// such type at all: eu-north-1 has no t2). An explicit type that the region
// does not offer is a usage error, found before anything is created. It
// returns the architecture all of them run.
func Placements(ctx context.Context, api placementAPI, asked string, explicit bool, regionName string) ([]Placement, ec2types.ArchitectureValues, error) {
	candidates := []string{asked}
	if !explicit && asked != fallbackInstanceType {
		candidates = append(candidates, fallbackInstanceType)
	}
	arch, known, err := typeArch(ctx, api, asked)
	if err == nil && !known && len(candidates) > 1 {
		// The default type does not exist here: the fallback alone.
		arch, known, err = typeArch(ctx, api, fallbackInstanceType)
		candidates = candidates[1:]
	}
	if err == nil && !known {
		err = Usagef("instance type %q does not exist in %s: pass --instance-type with a type the region offers "+
			"(`aws ec2 describe-instance-type-offerings --region %s`)", candidates[0], regionName, regionName)
	}
	if err != nil {
		return nil, "", err
	}
	subnets, err := defaultSubnets(ctx, api)
	if err != nil {
		return nil, "", err
	}
	offered, err := offeredZones(ctx, api, candidates, regionName)
	if err != nil {
		return nil, "", err
	}
	out := placeAll(candidates, asked, offered, subnets, regionName)
	if len(out) == 0 {
		what := fmt.Sprintf("instance type %s is offered in no", asked)
		if !explicit && asked != fallbackInstanceType {
			what = fmt.Sprintf("neither %s nor %s is offered in any", asked, fallbackInstanceType)
		}
		return nil, "", Usagef("%s availability zone of %s that has a default subnet: pass --instance-type with a type "+
			"the region offers (`aws ec2 describe-instance-type-offerings --location-type availability-zone`)", what, regionName)
	}
	return out, arch, nil
}

// placeAll is a placement per candidate offered in a zone with a default
// subnet; one that stands in for the asked type says why.
func placeAll(candidates []string, asked string, offered map[string]map[string]bool, subnets []ec2types.Subnet, regionName string) []Placement {
	var out []Placement
	for _, t := range candidates {
		p := placeIn(t, offered[t], subnets)
		if p == nil {
			continue // not offered in any zone with a default subnet
		}
		if t != asked {
			p.StandardCredits = true
			p.Why = fmt.Sprintf("%s is not eligible for this account's free plan", asked)
			if len(out) == 0 {
				p.Why = fmt.Sprintf("%s is not offered in %s", asked, regionName)
			}
		}
		out = append(out, *p)
	}
	return out
}

// offeredZones is, per instance type, the zones that offer it: one
// question for all the types, every page of the answer.
func offeredZones(ctx context.Context, api placementAPI, types []string, regionName string) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(api, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: types}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing where %s is offered in %s: %w", strings.Join(types, " and "), regionName, err)
		}
		for _, o := range page.InstanceTypeOfferings {
			t := string(o.InstanceType)
			if out[t] == nil {
				out[t] = map[string]bool{}
			}
			out[t][aws.ToString(o.Location)] = true
		}
	}
	return out, nil
}

// placeIn picks the first default subnet (by zone) whose zone offers t, or
// nil when there is none.
func placeIn(t string, offered map[string]bool, subnets []ec2types.Subnet) *Placement {
	for _, s := range subnets {
		if z := aws.ToString(s.AvailabilityZone); offered[z] {
			return &Placement{InstanceType: t, SubnetID: aws.ToString(s.SubnetId), Zone: z}
		}
	}
	return nil
}

// defaultSubnets are the default VPC's default subnets, by zone.
func defaultSubnets(ctx context.Context, api placementAPI) ([]ec2types.Subnet, error) {
	subnets, err := describeSubnets(ctx, api, &ec2.DescribeSubnetsInput{
		Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("listing the default subnets: %w", err)
	}
	if len(subnets) == 0 {
		return nil, Usagef("this region has no default subnet: create the default VPC with `aws ec2 create-default-vpc`")
	}
	sort.Slice(subnets, func(i, j int) bool {
		return aws.ToString(subnets[i].AvailabilityZone) < aws.ToString(subnets[j].AvailabilityZone)
	})
	return subnets, nil
}

// InstanceArch returns the architecture an instance type runs, preferring x86_64.
func InstanceArch(ctx context.Context, api typesAPI, instanceType string) (ec2types.ArchitectureValues, error) {
	arch, known, err := typeArch(ctx, api, instanceType)
	if err == nil && !known {
		return "", Usagef("instance type %q does not exist in this region", instanceType)
	}
	return arch, err
}

// typeArch is InstanceArch's answer, with known false (and no error) when
// the region has no such type: EC2 answers InvalidInstanceType there.
func typeArch(ctx context.Context, api typesAPI, instanceType string) (_ ec2types.ArchitectureValues, known bool, _ error) {
	infos, err := describeInstanceTypes(ctx, api, &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(instanceType)},
	})
	if HasCode(err, "InvalidInstanceType") {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("looking up instance type %s: %w", instanceType, err)
	}
	if len(infos) == 0 || infos[0].ProcessorInfo == nil {
		return "", false, nil
	}
	archs := infos[0].ProcessorInfo.SupportedArchitectures
	for _, want := range []ec2types.ArchitectureType{ec2types.ArchitectureTypeX8664, ec2types.ArchitectureTypeArm64} {
		if slices.Contains(archs, want) {
			return ec2types.ArchitectureValues(want), true, nil
		}
	}
	return "", true, Usagef("instance type %q supports %v; mlstack needs x86_64 or arm64", instanceType, archs)
}

// isFreePlanRefusal matches RunInstances' answer on an account whose free
// plan allows only free-tier eligible types. The code alone is too broad,
// so the message narrows it.
func isFreePlanRefusal(err error) bool {
	return HasCode(err, "InvalidParameterCombination") && strings.Contains(err.Error(), "not eligible for Free Tier")
}
