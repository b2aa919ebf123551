package provision

// up's side of the database: make what is missing without waiting (RDS
// works on it while the instance boots and installs MLflow), then wait for
// it and tell the server where it is.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// dbInput is what ensureDatabase works with.
type dbInput struct {
	names       cloud.Names
	serverGroup string // the server's security group id
	class       string
	tags        map[string]string
	log         *progress
}

// ensureDatabase makes what the database lacks, in order: its master
// password in SSM, its security group, its subnet group, the instance (new,
// or restored from the newest kept snapshot). It does not wait for RDS.
func ensureDatabase(ctx context.Context, s *cloud.Session, f *cloud.DBFound, in dbInput) error {
	n, log := in.names, in.log
	if f.Password == "" {
		pw, err := local.RandomSecret(32)
		if err != nil {
			return err
		}
		log.Step("storing the database's master password in SSM as SecureString %s", n.Param(cloud.ParamDBPassword))
		if err := cloud.PutSecret(ctx, s.SSM, n.Param(cloud.ParamDBPassword), pw, false, in.tags); err != nil {
			return err
		}
		f.Password = pw
	}
	if err := ensureDBGroup(ctx, s.EC2, f.SG, in); err != nil {
		return err
	}
	if !f.SubnetGroup {
		if err := createSubnetGroup(ctx, s, in); err != nil {
			return err
		}
		f.SubnetGroup = true
	}
	if f.Inst != nil {
		return nil
	}
	return createDBInstance(ctx, s.RDS, f, in)
}

// ensureDBGroup makes the database's security group and lets the server's
// group in on tcp 5432: nothing else reaches the database.
func ensureDBGroup(ctx context.Context, api cloud.SGAPI, g *cloud.DBGroup, in dbInput) error {
	n := in.names
	if g.ID == "" {
		in.log.Step("creating security group %s for the database", n.DBSecurityGroup)
		out, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(n.DBSecurityGroup), VpcId: aws.String(g.VpcID),
			Description:       aws.String(cloud.SGText("mlstack " + n.Stack + ": PostgreSQL from the server group only")),
			TagSpecifications: []ec2types.TagSpecification{cloud.EC2TagSpec(ec2types.ResourceTypeSecurityGroup, in.tags, n.DBSecurityGroup)},
		})
		switch {
		case cloud.HasCode(err, "InvalidGroup.Duplicate"): // made meanwhile (a lost answer): ours only if tagged so
			again, ferr := cloud.FindDBGroup(ctx, api, n)
			if ferr != nil {
				return ferr
			}
			*g = *again
		case err != nil:
			return fmt.Errorf("creating security group %s: %w", n.DBSecurityGroup, err)
		default:
			g.ID = aws.ToString(out.GroupId)
		}
	}
	if g.Open {
		return nil
	}
	in.log.Step("letting security group %s reach tcp %d in %s", n.SecurityGroup, cloud.DBPort, n.DBSecurityGroup)
	err := cloud.RetryOn(ctx, cloud.GroupWait, cloud.IsGroupPropagation, nil, func() error {
		_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(g.ID),
			IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(cloud.DBPort), ToPort: aws.Int32(cloud.DBPort),
				UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(in.serverGroup), Description: aws.String(cloud.SGText("mlstack server"))}}}},
		})
		return err
	})
	if err != nil && !cloud.HasCode(err, "InvalidPermission.Duplicate") {
		return fmt.Errorf("opening tcp %d of security group %s: %w", cloud.DBPort, n.DBSecurityGroup, err)
	}
	g.Open = true
	return nil
}

// createSubnetGroup puts the database in the default VPC's default
// subnets: RDS wants two availability zones at least.
func createSubnetGroup(ctx context.Context, s *cloud.Session, in dbInput) error {
	n := in.names
	p := ec2.NewDescribeSubnetsPaginator(s.EC2, &ec2.DescribeSubnetsInput{
		Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}},
	})
	subnets, err := cloud.AllPages(ctx, p.HasMorePages, p.NextPage, func(o *ec2.DescribeSubnetsOutput) []ec2types.Subnet { return o.Subnets })
	if err != nil {
		return fmt.Errorf("listing the default subnets: %w", err)
	}
	var ids, zones []string
	for _, sn := range subnets {
		ids = append(ids, aws.ToString(sn.SubnetId))
		if z := aws.ToString(sn.AvailabilityZone); !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	if len(zones) < 2 {
		return fmt.Errorf("RDS needs subnets in two availability zones, and the default VPC has default subnets in %d: "+
			"add one with `aws ec2 create-default-subnet --availability-zone ZONE`", len(zones))
	}
	in.log.Step("creating DB subnet group %s over %s", n.DBSubnetGroup, cloud.Plural(len(ids), "default subnet"))
	_, err = s.RDS.CreateDBSubnetGroup(ctx, &rds.CreateDBSubnetGroupInput{
		DBSubnetGroupName: aws.String(n.DBSubnetGroup), SubnetIds: ids, Tags: cloud.RDSTags(in.tags),
		DBSubnetGroupDescription: aws.String("mlstack " + n.Stack + ": the default subnets"),
	})
	if err != nil && !cloud.HasCode(err, "DBSubnetGroupAlreadyExists", "DBSubnetGroupAlreadyExistsFault") {
		return fmt.Errorf("creating DB subnet group %s: %w", n.DBSubnetGroup, err)
	}
	return nil
}

// createDBInstance asks RDS for the database, or for the newest kept
// snapshot of it back; RDS takes minutes, waitDatabase waits.
func createDBInstance(ctx context.Context, api cloud.RDSAPI, f *cloud.DBFound, in dbInput) error {
	n, snap := in.names, f.Restorable()
	var err error
	if snap != "" {
		in.log.Step("restoring RDS database %s (%s) from its kept snapshot %s", n.DB, cloud.ClassOr(in.class), snap)
		_, err = api.RestoreDBInstanceFromDBSnapshot(ctx, &rds.RestoreDBInstanceFromDBSnapshotInput{
			DBInstanceIdentifier: aws.String(n.DB), DBSnapshotIdentifier: aws.String(snap), DBInstanceClass: cloud.Optional(in.class),
			DBSubnetGroupName: aws.String(n.DBSubnetGroup), VpcSecurityGroupIds: []string{f.SG.ID},
			PubliclyAccessible: aws.Bool(false), MultiAZ: aws.Bool(false), CopyTagsToSnapshot: aws.Bool(true), Tags: cloud.RDSTags(in.tags),
		})
	} else {
		in.log.Step("creating RDS database %s: PostgreSQL %s, %s, %d GiB encrypted, not public (RDS takes 5 to 15 minutes; the instance boots meanwhile)",
			n.DB, cloud.DBEngineVersion, in.class, cloud.DBStorageGiB)
		_, err = api.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{
			DBInstanceIdentifier: aws.String(n.DB), Engine: aws.String("postgres"), EngineVersion: aws.String(cloud.DBEngineVersion),
			DBInstanceClass: aws.String(in.class), AllocatedStorage: aws.Int32(cloud.DBStorageGiB), StorageType: aws.String("gp3"),
			StorageEncrypted: aws.Bool(true), PubliclyAccessible: aws.Bool(false), MultiAZ: aws.Bool(false),
			DBName: aws.String(cloud.DBName), MasterUsername: aws.String(cloud.DBUser), MasterUserPassword: aws.String(f.Password),
			Port: aws.Int32(cloud.DBPort), DBSubnetGroupName: aws.String(n.DBSubnetGroup), VpcSecurityGroupIds: []string{f.SG.ID},
			BackupRetentionPeriod: aws.Int32(cloud.DBBackupDays), CopyTagsToSnapshot: aws.Bool(true), DeletionProtection: aws.Bool(false),
			AutoMinorVersionUpgrade: aws.Bool(true), Tags: cloud.RDSTags(in.tags),
		})
	}
	if cloud.HasCode(err, "DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault") { // another run asked meanwhile
		err = nil
	}
	if err != nil {
		return fmt.Errorf("creating RDS database %s: %w", n.DB, err)
	}
	f.Restored = snap
	return nil
}

// dbFailed are states RDS does not leave by itself.
var dbFailed = []string{"failed", "incompatible-network", "incompatible-parameters", "incompatible-restore",
	"incompatible-option-group", "inaccessible-encryption-credentials", "storage-full", "deleting", "stopped", "stopping"}

// waitDatabase waits until RDS says the database is available with no
// change pending, saying each state it passes through.
func waitDatabase(ctx context.Context, api cloud.RDSAPI, n cloud.Names, timeout time.Duration, log *progress) (*rdstypes.DBInstance, error) {
	last := ""
	return pollDatabase(ctx, api, n, timeout, log.Wait("waiting for RDS database %s (RDS takes 5 to 15 minutes)", n.DB),
		func(db *rdstypes.DBInstance) (string, bool, error) {
			state := "not visible yet" // a new database can be unknown for a moment
			if db != nil {
				state = aws.ToString(db.DBInstanceStatus)
				if state == "available" && (db.PendingModifiedValues == nil || db.PendingModifiedValues.MasterUserPassword == nil) {
					return fmt.Sprintf("RDS database %s is available", n.DB), true, nil
				}
			}
			if state != last {
				log.Info("RDS database %s: %s", n.DB, state)
				last = state
			}
			if slices.Contains(dbFailed, state) {
				return state, false, fmt.Errorf("RDS database %s is %s: it will not become available by itself (the RDS console's events say why)", n.DB, state)
			}
			return state, false, nil
		})
}

// pollDatabase asks RDS about the database, after a second and then less
// and less often, until check says it is done (its message ends the wait
// line), fails, or timeout passes (the error names check's last state).
func pollDatabase(ctx context.Context, api cloud.RDSAPI, n cloud.Names, timeout time.Duration, live server.Waiting,
	check func(*rdstypes.DBInstance) (said string, done bool, err error)) (*rdstypes.DBInstance, error) {
	w := cloud.WaitsOf(ctx)
	deadline, delay := time.Now().Add(timeout), w.DBPollFirst
	for {
		db, err := cloud.FindDBInstance(ctx, api, n)
		said, done := "", false
		if err == nil {
			said, done, err = check(db)
		}
		switch {
		case err != nil:
			live.Stop()
			return nil, err
		case done:
			live.Done("%s", said)
			return db, nil
		case time.Now().After(deadline):
			live.Stop()
			return nil, fmt.Errorf("RDS database %s is still %s after %s", n.DB, said, timeout)
		}
		if err := cloud.Sleep(ctx, delay); err != nil {
			live.Stop()
			return nil, err
		}
		delay = min(2*delay, w.DBPollMax)
	}
}

// retagDatabase moves the database's expiry (up --ttl on a live stack).
func retagDatabase(ctx context.Context, api cloud.RDSAPI, f *cloud.DBFound, exp string) error {
	if f.Inst == nil {
		return nil
	}
	_, err := api.AddTagsToResource(ctx, &rds.AddTagsToResourceInput{ResourceName: f.Inst.DBInstanceArn,
		Tags: []rdstypes.Tag{{Key: aws.String(cloud.TagExpiresAt), Value: aws.String(exp)}}})
	if err != nil {
		return fmt.Errorf("tagging RDS database %s: %w", aws.ToString(f.Inst.DBInstanceIdentifier), err)
	}
	return nil
}

// readyDatabase waits for the database, gives a restored one the stack's
// master password (a snapshot keeps the one it was taken with), and writes
// where it answers into SSM, which the server waits for.
func readyDatabase(ctx context.Context, s *cloud.Session, f *cloud.DBFound, n cloud.Names, tags map[string]string, log *progress) error {
	db, err := waitDatabase(ctx, s.RDS, n, cloud.DBWaitFor, log)
	if err != nil {
		return err
	}
	// An up interrupted after a restore left no endpoint: the next one sets
	// the password as well.
	if f.Restored != "" || (f.Endpoint == "" && len(f.Snapshots) > 0) {
		log.Step("setting the master password of RDS database %s to the stack's (SSM %s)", n.DB, n.Param(cloud.ParamDBPassword))
		if _, err := s.RDS.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(n.DB),
			MasterUserPassword: aws.String(f.Password), BackupRetentionPeriod: aws.Int32(cloud.DBBackupDays), ApplyImmediately: aws.Bool(true)}); err != nil {
			return fmt.Errorf("setting the master password of RDS database %s: %w", n.DB, err)
		}
		if db, err = waitDatabase(ctx, s.RDS, n, cloud.DBWaitFor, log); err != nil {
			return err
		}
	}
	want, err := cloud.EndpointOf(db)
	if err != nil || want == f.Endpoint {
		return err
	}
	log.Step("telling the server where the database is (SSM parameter %s)", n.Param(cloud.ParamDatabase))
	in := &ssm.PutParameterInput{Name: aws.String(n.Param(cloud.ParamDatabase)), Value: aws.String(want), Type: ssmtypes.ParameterTypeString,
		Description: aws.String("mlstack: where the server's database answers, written by mlstack once RDS made it")}
	if err := cloud.PutParam(ctx, s.SSM, in, f.Endpoint != "", tags); err != nil {
		return err
	}
	f.Endpoint, f.Inst = want, db
	return nil
}
