// Command boot is the boot test's view of the AWS emulator (moto): what EC2
// would hand the instance, and what is left after `mlstack down`. The boot
// test (boot_test.go, build tag boottest) calls the same functions; the
// command is for looking at a stack by hand.
// It uses the ordinary AWS configuration chain (AWS_ENDPOINT_URL etc.).
//
//	boot instance  -stack S -dir D [-timeout 2m]
//	    waits for the stack's running instance, then writes into D:
//	    user-data (exactly what RunInstances got: gzip, 0600; it must unpack
//	    to a #cloud-config), instance.env (ids,
//	    public DNS name and IPv4, role name; no secrets) and aemm.json, the
//	    ec2-metadata-mock configuration that answers IMDS like EC2 would for
//	    that instance, with credentials of its instance role from
//	    sts:AssumeRole (0600). Prints nothing secret.
//	boot objects   -bucket B [-prefix P]   lists object keys, one per line
//	boot leftovers -stack S                lists what the stack still owns;
//	    exit 1 when anything is left
//	boot ui -uri https://HOST:5000 -cert FILE -user U -password-file F
//	        -experiment E -run R -metric M -value V -out DIR [-resolve HOST=IP]
//	    opens the MLflow UI in Debian's chromium (headless, the certificate
//	    pinned), sees the experiment, the run in its run list and the run's
//	    metric with its value, saves DIR/mlflow-ui-run.png; exit 1 naming the
//	    step that failed and what the page showed (DIR/mlflow-ui-failed.png).
//	    Needs no AWS.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/mlstack/mlstack/cloudinit"
)

const tagStack = "mlstack:stack"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx := context.Background()
	if os.Args[1] == "ui" { // no AWS: before the AWS configuration is loaded
		if err := uiCheck(ctx, os.Args[2:]); err != nil {
			fail(err)
		}
		return
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fail(err)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	stack := fs.String("stack", "", "stack name")
	dir := fs.String("dir", "", "output directory")
	bucket := fs.String("bucket", "", "bucket")
	prefix := fs.String("prefix", "", "key prefix")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "instance":
		err = instance(ctx, cfg, *stack, *dir, *timeout)
	case "objects":
		err = objects(ctx, cfg, *bucket, *prefix)
	case "leftovers":
		err = leftovers(ctx, cfg, *stack)
	default:
		usage()
	}
	if err != nil {
		fail(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: boot instance -stack S -dir D | objects -bucket B [-prefix P] | leftovers -stack S | ui … (see boot ui -h)")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "boot: %v\n", err)
	os.Exit(1)
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// running returns the stack's running instance, or nil.
func running(ctx context.Context, api *ec2.Client, stack string) (*ec2types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + tagStack), Values: []string{stack}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil {
		return nil, err
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.PublicDnsName) != "" && aws.ToString(i.PublicIpAddress) != "" && i.IamInstanceProfile != nil {
				return &i, nil
			}
		}
	}
	return nil, nil
}

func instance(ctx context.Context, cfg aws.Config, stack, dir string, timeout time.Duration) error {
	if stack == "" || dir == "" {
		usage()
	}
	f, err := launched(ctx, cfg, stack, timeout)
	if err != nil {
		return err
	}
	info := fmt.Sprintf("INSTANCE_ID=%s\nPUBLIC_DNS=%s\nPUBLIC_IP=%s\nROLE_NAME=%s\nROLE_ACCESS_KEY_ID=%s\n",
		f.id, f.dns, f.ip, f.role.name, aws.ToString(f.role.creds.AccessKeyId))
	for name, data := range map[string][]byte{"user-data": f.userData, "aemm.json": f.aemmJSON, "instance.env": []byte(info)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "boot: instance %s (%s, %s), role %s, user-data %d bytes (%d unpacked)\n",
		f.id, f.dns, f.ip, f.role.name, len(f.userData), f.unpacked)
	return nil
}

// launchedInstance is what EC2 hands a new instance of the stack: its
// user-data, its public name and address, its role's credentials, and
// the ec2-metadata-mock configuration serving them over IMDSv2.
type launchedInstance struct {
	id, dns, ip string
	userData    []byte // exactly what RunInstances got (gzip)
	unpacked    int    // its size unpacked
	role        instanceRole
	aemmJSON    []byte // holds the role's secret key and session token
}

// launched waits for the stack's running instance and gathers what EC2
// would hand it. The user-data must unpack to a #cloud-config.
func launched(ctx context.Context, cfg aws.Config, stack string, timeout time.Duration) (launchedInstance, error) {
	ec2c := ec2.NewFromConfig(cfg)
	inst, err := waitRunning(ctx, ec2c, stack, timeout)
	if err != nil {
		return launchedInstance{}, err
	}
	f := launchedInstance{id: aws.ToString(inst.InstanceId), dns: aws.ToString(inst.PublicDnsName), ip: aws.ToString(inst.PublicIpAddress)}
	if f.userData, err = userData(ctx, ec2c, inst); err != nil {
		return f, err
	}
	if f.role, err = assumeInstanceRole(ctx, cfg, inst); err != nil {
		return f, err
	}
	if f.aemmJSON, err = json.MarshalIndent(aemmConfig(cfg, inst, f.role), "", "  "); err != nil {
		return f, err
	}
	doc, err := cloudinit.Decode(f.userData)
	if err != nil {
		return f, err
	}
	if !strings.HasPrefix(string(doc), "#cloud-config\n") {
		return f, fmt.Errorf("the user-data of %s is not a #cloud-config", f.id)
	}
	f.unpacked = len(doc)
	return f, nil
}

// waitRunning polls until the stack has a running instance, for at most timeout.
func waitRunning(ctx context.Context, ec2c *ec2.Client, stack string, timeout time.Duration) (*ec2types.Instance, error) {
	deadline := time.Now().Add(timeout)
	for {
		inst, err := running(ctx, ec2c, stack)
		if err != nil {
			return nil, fmt.Errorf("describing instances: %w", err)
		}
		if inst != nil {
			return inst, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no running instance of stack %s after %s", stack, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// userData returns exactly the user-data RunInstances got, decoded.
func userData(ctx context.Context, ec2c *ec2.Client, inst *ec2types.Instance) ([]byte, error) {
	id := aws.ToString(inst.InstanceId)
	attr, err := ec2c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: inst.InstanceId, Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil {
		return nil, fmt.Errorf("reading user-data of %s: %w", id, err)
	}
	if attr.UserData == nil || aws.ToString(attr.UserData.Value) == "" {
		return nil, fmt.Errorf("instance %s has no user-data", id)
	}
	ud, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	if err != nil {
		return nil, fmt.Errorf("user-data of %s is not base64: %w", id, err)
	}
	return ud, nil
}

// instanceRole is the role EC2 would give the instance, with credentials.
type instanceRole struct {
	profileARN, profileID string
	name                  string
	creds                 *ststypes.Credentials
}

// assumeInstanceRole finds the role in the instance's instance profile and
// assumes it, as EC2 does for the instance.
func assumeInstanceRole(ctx context.Context, cfg aws.Config, inst *ec2types.Instance) (instanceRole, error) {
	// The role EC2 would give the instance: the one in its instance profile.
	profileARN := aws.ToString(inst.IamInstanceProfile.Arn)
	profileName := profileARN[strings.LastIndex(profileARN, "/")+1:]
	prof, err := iam.NewFromConfig(cfg).GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: &profileName})
	if err != nil {
		return instanceRole{}, fmt.Errorf("reading instance profile %s: %w", profileName, err)
	}
	if len(prof.InstanceProfile.Roles) != 1 {
		return instanceRole{}, fmt.Errorf("instance profile %s holds %d roles, want 1", profileName, len(prof.InstanceProfile.Roles))
	}
	role := prof.InstanceProfile.Roles[0]
	creds, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: role.Arn, RoleSessionName: aws.String(aws.ToString(inst.InstanceId)), DurationSeconds: aws.Int32(3600 * 6),
	})
	if err != nil {
		return instanceRole{}, fmt.Errorf("assuming role %s: %w", aws.ToString(role.RoleName), err)
	}
	return instanceRole{
		profileARN: profileARN,
		profileID:  aws.ToString(prof.InstanceProfile.InstanceProfileId),
		name:       aws.ToString(role.RoleName),
		creds:      creds.Credentials,
	}, nil
}

// aemmConfig is the ec2-metadata-mock configuration that answers IMDSv2
// like EC2 would for inst, with the credentials of its role.
func aemmConfig(cfg aws.Config, inst *ec2types.Instance, r instanceRole) map[string]any {
	c := r.creds
	now := time.Now().UTC().Format(time.RFC3339)
	return map[string]any{
		"imdsv2": true,
		"metadata": map[string]any{
			"paths": map[string]string{
				"iam-security-credentials": "/latest/meta-data/iam/security-credentials/" + r.name,
			},
			"values": map[string]any{
				"instance-id":                   aws.ToString(inst.InstanceId),
				"instance-type":                 string(inst.InstanceType),
				"ami-id":                        aws.ToString(inst.ImageId),
				"public-hostname":               aws.ToString(inst.PublicDnsName),
				"public-ipv4":                   aws.ToString(inst.PublicIpAddress),
				"local-hostname":                aws.ToString(inst.PrivateDnsName),
				"local-ipv4":                    aws.ToString(inst.PrivateIpAddress),
				"placement-region":              cfg.Region,
				"iam-security-credentials-role": r.name,
				"iam-info": map[string]string{
					"Code": "Success", "LastUpdated": now,
					"InstanceProfileArn": r.profileARN, "InstanceProfileId": r.profileID,
				},
				"iam-security-credentials": map[string]string{
					"Code": "Success", "LastUpdated": now, "Type": "AWS-HMAC",
					"AccessKeyId": aws.ToString(c.AccessKeyId), "SecretAccessKey": aws.ToString(c.SecretAccessKey),
					"Token": aws.ToString(c.SessionToken), "Expiration": aws.ToTime(c.Expiration).UTC().Format(time.RFC3339),
				},
			},
		},
	}
}

func objects(ctx context.Context, cfg aws.Config, bucket, prefix string) error {
	if bucket == "" {
		usage()
	}
	keys, err := objectKeys(ctx, cfg, bucket, prefix)
	for _, k := range keys {
		fmt.Println(k)
	}
	return err
}

// objectKeys lists the keys under prefix in bucket, every page.
func objectKeys(ctx context.Context, cfg aws.Config, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s3Client(cfg), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return keys, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// leftovers prints what the stack still owns and fails when anything is.
func leftovers(ctx context.Context, cfg aws.Config, stack string) error {
	if stack == "" {
		usage()
	}
	left, err := stackLeftovers(ctx, cfg, stack)
	if err != nil {
		return err
	}
	for _, l := range left {
		fmt.Println(l)
	}
	if len(left) > 0 {
		return fmt.Errorf("stack %s left %d resource(s) behind", stack, len(left))
	}
	fmt.Fprintf(os.Stderr, "boot: nothing of stack %s is left (users, roles, profiles, buckets, instances, security groups, key pairs, SSM parameters, RDS databases, subnet groups and snapshots)\n", stack)
	return nil
}

// stackLeftovers lists, from every angle down cleans up, what still
// carries the stack's name or tag ("KIND NAME").
func stackLeftovers(ctx context.Context, cfg aws.Config, stack string) ([]string, error) {
	base := "mlstack-" + stack
	var f found
	f.iamEntities(ctx, iam.NewFromConfig(cfg), base)
	f.buckets(ctx, s3Client(cfg), base)
	f.ec2Resources(ctx, ec2.NewFromConfig(cfg), stack, base)
	f.parameters(ctx, ssm.NewFromConfig(cfg), stack)
	f.databases(ctx, rds.NewFromConfig(cfg), base)
	if err := errors.Join(f.errs...); err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	return f.left, nil
}

// databases: RDS databases, DB subnet groups and snapshots named base*.
func (f *found) databases(ctx context.Context, c *rds.Client, base string) {
	dbs, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{})
	f.errs = append(f.errs, err)
	if dbs != nil {
		for _, d := range dbs.DBInstances {
			if strings.HasPrefix(aws.ToString(d.DBInstanceIdentifier), base) {
				f.add("RDS database", aws.ToString(d.DBInstanceIdentifier))
			}
		}
	}
	groups, err := c.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{})
	f.errs = append(f.errs, err)
	if groups != nil {
		for _, g := range groups.DBSubnetGroups {
			if strings.HasPrefix(aws.ToString(g.DBSubnetGroupName), base) {
				f.add("DB subnet group", aws.ToString(g.DBSubnetGroupName))
			}
		}
	}
	snaps, err := c.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{})
	f.errs = append(f.errs, err)
	if snaps != nil {
		for _, s := range snaps.DBSnapshots {
			if strings.Contains(aws.ToString(s.DBSnapshotIdentifier), base) {
				f.add("RDS snapshot", aws.ToString(s.DBSnapshotIdentifier))
			}
		}
	}
}

// found collects what leftovers finds ("KIND NAME") and the listing errors.
type found struct {
	left []string
	errs []error
}

func (f *found) add(kind, name string) { f.left = append(f.left, kind+" "+name) }

// iamEntities: users, roles and instance profiles named base*, on every
// page (a real account can have more than one).
func (f *found) iamEntities(ctx context.Context, iamc *iam.Client, base string) {
	for p := iam.NewListUsersPaginator(iamc, &iam.ListUsersInput{}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			f.errs = append(f.errs, err)
			break
		}
		for _, u := range out.Users {
			if strings.HasPrefix(aws.ToString(u.UserName), base) {
				f.add("IAM user", aws.ToString(u.UserName))
			}
		}
	}
	for p := iam.NewListRolesPaginator(iamc, &iam.ListRolesInput{}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			f.errs = append(f.errs, err)
			break
		}
		for _, r := range out.Roles {
			if strings.HasPrefix(aws.ToString(r.RoleName), base) {
				f.add("IAM role", aws.ToString(r.RoleName))
			}
		}
	}
	for p := iam.NewListInstanceProfilesPaginator(iamc, &iam.ListInstanceProfilesInput{}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			f.errs = append(f.errs, err)
			break
		}
		for _, ip := range out.InstanceProfiles {
			if strings.HasPrefix(aws.ToString(ip.InstanceProfileName), base) {
				f.add("instance profile", aws.ToString(ip.InstanceProfileName))
			}
		}
	}
}

// buckets: buckets named base-*.
func (f *found) buckets(ctx context.Context, s3c *s3.Client, base string) {
	out, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String(base + "-")})
	if err != nil {
		f.errs = append(f.errs, err)
		return
	}
	for _, b := range out.Buckets {
		if strings.HasPrefix(aws.ToString(b.Name), base+"-") {
			f.add("bucket", aws.ToString(b.Name))
		}
	}
}

// ec2Resources: the stack's instances that are not terminated, and the security
// group and key pair named base.
func (f *found) ec2Resources(ctx context.Context, ec2c *ec2.Client, stack, base string) {
	if out, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + tagStack), Values: []string{stack}},
	}}); err != nil {
		f.errs = append(f.errs, err)
	} else {
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.State != nil && i.State.Name != ec2types.InstanceStateNameTerminated {
					f.add("instance", aws.ToString(i.InstanceId)+" ("+string(i.State.Name)+")")
				}
			}
		}
	}
	if out, err := ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{}); err != nil {
		f.errs = append(f.errs, err)
	} else {
		for _, g := range out.SecurityGroups {
			if aws.ToString(g.GroupName) == base {
				f.add("security group", aws.ToString(g.GroupId))
			}
		}
	}
	if out, err := ec2c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil {
		f.errs = append(f.errs, err)
	} else {
		for _, k := range out.KeyPairs {
			if aws.ToString(k.KeyName) == base {
				f.add("key pair", aws.ToString(k.KeyName))
			}
		}
	}
}

// parameters: SSM parameters under the stack's path.
func (f *found) parameters(ctx context.Context, ssmc *ssm.Client, stack string) {
	for p := ssm.NewGetParametersByPathPaginator(ssmc, &ssm.GetParametersByPathInput{
		Path: aws.String("/mlstack/" + stack), Recursive: aws.Bool(true)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			f.errs = append(f.errs, err)
			return
		}
		for _, prm := range out.Parameters {
			f.add("SSM parameter", aws.ToString(prm.Name))
		}
	}
}
