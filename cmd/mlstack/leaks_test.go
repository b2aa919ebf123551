package main

import (
	"context"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// everything lists every resource of every type mlstack creates that exists
// in the emulator, whoever made it, as "type name". Defaults that exist in a
// fresh account (default VPC's security group) are left out.
func (e *env) everything() []string {
	e.t.Helper()
	ctx := context.Background()
	var out []string
	add := func(kind, name string) { out = append(out, kind+" "+name) }

	users, err := e.iam.ListUsers(ctx, &iam.ListUsersInput{})
	must(e.t, err)
	for _, u := range users.Users {
		add("iam-user", aws.ToString(u.UserName))
		keys, err := e.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: u.UserName})
		must(e.t, err)
		for _, k := range keys.AccessKeyMetadata {
			add("access-key", aws.ToString(k.AccessKeyId))
		}
	}
	roles, err := e.iam.ListRoles(ctx, &iam.ListRolesInput{})
	must(e.t, err)
	for _, r := range roles.Roles {
		add("iam-role", aws.ToString(r.RoleName))
	}
	profs, err := e.iam.ListInstanceProfiles(ctx, &iam.ListInstanceProfilesInput{})
	must(e.t, err)
	for _, p := range profs.InstanceProfiles {
		add("instance-profile", aws.ToString(p.InstanceProfileName))
	}
	buckets, err := e.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(e.t, err)
	for _, b := range buckets.Buckets {
		add("bucket", aws.ToString(b.Name))
	}
	insts, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
	}})
	must(e.t, err)
	for _, r := range insts.Reservations {
		for _, i := range r.Instances {
			add("instance", aws.ToString(i.InstanceId))
		}
	}
	sgs, err := e.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	must(e.t, err)
	for _, g := range sgs.SecurityGroups {
		if aws.ToString(g.GroupName) != "default" {
			add("security-group", aws.ToString(g.GroupName))
		}
	}
	kps, err := e.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	must(e.t, err)
	for _, k := range kps.KeyPairs {
		add("key-pair", aws.ToString(k.KeyName))
	}
	vols, err := e.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	must(e.t, err)
	for _, v := range vols.Volumes {
		if v.State != ec2types.VolumeStateDeleted {
			add("volume", aws.ToString(v.VolumeId))
		}
	}
	params, err := e.ssmAs("test", "test", "").DescribeParameters(ctx, &ssm.DescribeParametersInput{})
	must(e.t, err)
	for _, p := range params.Parameters {
		add("ssm-parameter", aws.ToString(p.Name))
	}
	dbs, err := e.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{})
	must(e.t, err)
	for _, d := range dbs.DBInstances {
		add("rds-database", aws.ToString(d.DBInstanceIdentifier))
	}
	subnets, err := e.rds.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{})
	must(e.t, err)
	for _, g := range subnets.DBSubnetGroups {
		add("db-subnet-group", aws.ToString(g.DBSubnetGroupName))
	}
	snaps, err := e.rds.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{})
	must(e.t, err)
	for _, s := range snaps.DBSnapshots {
		add("rds-snapshot", aws.ToString(s.DBSnapshotIdentifier))
	}
	sort.Strings(out)
	return out
}

// assertNothingLeft proves that only the expected (foreign) resources exist.
func (e *env) assertNothingLeft(expected ...string) {
	e.t.Helper()
	got := e.everything()
	sort.Strings(expected)
	if len(got) != len(expected) {
		e.t.Fatalf("leak check: resources left\n got: %v\nwant: %v", got, expected)
	}
	for i := range got {
		if got[i] != expected[i] {
			e.t.Fatalf("leak check: resources left\n got: %v\nwant: %v", got, expected)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
