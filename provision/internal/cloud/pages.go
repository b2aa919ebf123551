package cloud

// AWS pages every list and describe it documents as paginated (IAM at 100
// items, S3 at 1,000 keys, SSM's GetParametersByPath at 10, RDS at 100):
// one call reads the first page and silently misses the rest. Every such
// call in mlstack goes through the SDK's paginator, most through these
// helpers; paging_test.go in package provision fails on one that does not.

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
)

// AllPages reads every page of an SDK paginator (pass its HasMorePages and
// NextPage) and gathers the items that items picks from each. On an error
// it returns what it gathered and the error, unwrapped, for the caller to
// word.
func AllPages[O, Opt, T any](ctx context.Context, more func() bool, next func(context.Context, ...func(*Opt)) (O, error), items func(O) []T) ([]T, error) {
	var all []T
	for more() {
		page, err := next(ctx)
		if err != nil {
			return all, err
		}
		all = append(all, items(page)...)
	}
	return all, nil
}

func describeVpcs(ctx context.Context, api ec2.DescribeVpcsAPIClient, in *ec2.DescribeVpcsInput) ([]ec2types.Vpc, error) {
	p := ec2.NewDescribeVpcsPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeVpcsOutput) []ec2types.Vpc { return o.Vpcs })
}

func describeSecurityGroups(ctx context.Context, api ec2.DescribeSecurityGroupsAPIClient, in *ec2.DescribeSecurityGroupsInput) ([]ec2types.SecurityGroup, error) {
	p := ec2.NewDescribeSecurityGroupsPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeSecurityGroupsOutput) []ec2types.SecurityGroup { return o.SecurityGroups })
}

func describeSubnets(ctx context.Context, api ec2.DescribeSubnetsAPIClient, in *ec2.DescribeSubnetsInput) ([]ec2types.Subnet, error) {
	p := ec2.NewDescribeSubnetsPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeSubnetsOutput) []ec2types.Subnet { return o.Subnets })
}

func describeImages(ctx context.Context, api ec2.DescribeImagesAPIClient, in *ec2.DescribeImagesInput) ([]ec2types.Image, error) {
	p := ec2.NewDescribeImagesPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeImagesOutput) []ec2types.Image { return o.Images })
}

// DescribeInstances is every instance the input matches, reservations
// flattened.
func DescribeInstances(ctx context.Context, api ec2.DescribeInstancesAPIClient, in *ec2.DescribeInstancesInput) ([]ec2types.Instance, error) {
	p := ec2.NewDescribeInstancesPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeInstancesOutput) []ec2types.Instance {
		var insts []ec2types.Instance
		for _, r := range o.Reservations {
			insts = append(insts, r.Instances...)
		}
		return insts
	})
}

func describeInstanceTypes(ctx context.Context, api ec2.DescribeInstanceTypesAPIClient, in *ec2.DescribeInstanceTypesInput) ([]ec2types.InstanceTypeInfo, error) {
	p := ec2.NewDescribeInstanceTypesPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeInstanceTypesOutput) []ec2types.InstanceTypeInfo { return o.InstanceTypes })
}

func describeDBInstances(ctx context.Context, api rds.DescribeDBInstancesAPIClient, in *rds.DescribeDBInstancesInput) ([]rdstypes.DBInstance, error) {
	p := rds.NewDescribeDBInstancesPaginator(api, in)
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *rds.DescribeDBInstancesOutput) []rdstypes.DBInstance { return o.DBInstances })
}

func listAccessKeys(ctx context.Context, api iam.ListAccessKeysAPIClient, user string) ([]iamtypes.AccessKeyMetadata, error) {
	p := iam.NewListAccessKeysPaginator(api, &iam.ListAccessKeysInput{UserName: &user})
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListAccessKeysOutput) []iamtypes.AccessKeyMetadata { return o.AccessKeyMetadata })
}

func listUserPolicies(ctx context.Context, api iam.ListUserPoliciesAPIClient, user string) ([]string, error) {
	p := iam.NewListUserPoliciesPaginator(api, &iam.ListUserPoliciesInput{UserName: &user})
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListUserPoliciesOutput) []string { return o.PolicyNames })
}

func listAttachedUserPolicies(ctx context.Context, api iam.ListAttachedUserPoliciesAPIClient, user string) ([]iamtypes.AttachedPolicy, error) {
	p := iam.NewListAttachedUserPoliciesPaginator(api, &iam.ListAttachedUserPoliciesInput{UserName: &user})
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListAttachedUserPoliciesOutput) []iamtypes.AttachedPolicy { return o.AttachedPolicies })
}

func listGroupsForUser(ctx context.Context, api iam.ListGroupsForUserAPIClient, user string) ([]iamtypes.Group, error) {
	p := iam.NewListGroupsForUserPaginator(api, &iam.ListGroupsForUserInput{UserName: &user})
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListGroupsForUserOutput) []iamtypes.Group { return o.Groups })
}

func listRolePolicies(ctx context.Context, api iam.ListRolePoliciesAPIClient, role string) ([]string, error) {
	p := iam.NewListRolePoliciesPaginator(api, &iam.ListRolePoliciesInput{RoleName: &role})
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListRolePoliciesOutput) []string { return o.PolicyNames })
}

func listAttachedRolePolicies(ctx context.Context, api iam.ListAttachedRolePoliciesAPIClient, role string) ([]iamtypes.AttachedPolicy, error) {
	p := iam.NewListAttachedRolePoliciesPaginator(api, &iam.ListAttachedRolePoliciesInput{RoleName: &role})
	return AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListAttachedRolePoliciesOutput) []iamtypes.AttachedPolicy { return o.AttachedPolicies })
}

// offersAny says whether any page lists an option: RDS may answer a page
// with none and a marker, so an empty first page is not yet a no.
func offersAny(ctx context.Context, p *rds.DescribeOrderableDBInstanceOptionsPaginator) (bool, error) {
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, err
		}
		if len(page.OrderableDBInstanceOptions) > 0 {
			return true, nil
		}
	}
	return false, nil
}
