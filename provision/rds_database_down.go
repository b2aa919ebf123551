package provision

// down's, status's and ls's side of the database.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
)

// dbNetworkWait bounds deleting the database's group and subnet group: RDS
// lets go of their network interfaces a while after the database is gone.
const dbNetworkWait = 10 * time.Minute

// deleteDatabase deletes the stack's database and waits until RDS has
// (keep: after a final snapshot, which stays, as earlier kept ones do;
// else those go too), then its security group and subnet group.
func deleteDatabase(ctx context.Context, s *cloud.Session, n cloud.Names, keep bool, log *progress) error {
	db, err := cloud.FindDBInstance(ctx, s.RDS, n)
	var foreign *cloud.NotOwnedError
	if errors.As(err, &foreign) {
		log.Warn("leaving RDS database %s alone: it is not tagged %s=%s", n.DB, cloud.TagStack, n.Stack)
		db, err = nil, nil
	}
	if err != nil {
		return err
	}
	if db != nil {
		if err := deleteDBInstance(ctx, s.RDS, n, db, keep, log); err != nil {
			return err
		}
	}
	if !keep {
		if err := deleteSnapshots(ctx, s.RDS, n, log); err != nil {
			return err
		}
	}
	return deleteDBNetwork(ctx, s, n, log)
}

// deleteDBInstance asks RDS to delete the database (a new one that is
// still being made is waited for: RDS refuses until then) and waits until
// it is gone.
func deleteDBInstance(ctx context.Context, api cloud.RDSAPI, n cloud.Names, db *rdstypes.DBInstance, keep bool, log *progress) error {
	if aws.ToString(db.DBInstanceStatus) != "deleting" {
		in := &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(n.DB), DeleteAutomatedBackups: aws.Bool(true), SkipFinalSnapshot: aws.Bool(!keep)}
		if keep {
			in.FinalDBSnapshotIdentifier = aws.String(n.DB + "-final-" + time.Now().UTC().Format("20060102-150405"))
			log.Step("deleting RDS database %s after a final snapshot %s, which is kept", n.DB, aws.ToString(in.FinalDBSnapshotIdentifier))
		} else {
			log.Step("deleting RDS database %s and its automated backups (no final snapshot)", n.DB)
		}
		busy := func(err error) bool {
			return cloud.HasCode(err, "InvalidDBInstanceState", "InvalidDBInstanceStateFault")
		}
		err := cloud.RetryOn(ctx, cloud.DBWaitFor, busy, nil, func() error {
			_, err := api.DeleteDBInstance(ctx, in)
			return err
		})
		if err != nil && !cloud.HasCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
			return fmt.Errorf("deleting RDS database %s: %w", n.DB, err)
		}
	}
	return waitDBGone(ctx, api, n, log)
}

// waitDBGone waits until RDS no longer lists the database.
func waitDBGone(ctx context.Context, api cloud.RDSAPI, n cloud.Names, log *progress) error {
	_, err := pollDatabase(ctx, api, n, cloud.DBWaitFor, log.Wait("waiting for RDS to delete database %s (it takes minutes)", n.DB),
		func(db *rdstypes.DBInstance) (string, bool, error) {
			if db == nil {
				return fmt.Sprintf("RDS database %s is gone", n.DB), true, nil
			}
			return aws.ToString(db.DBInstanceStatus), false, nil
		})
	return err
}

// deleteSnapshots deletes the stack's kept snapshots (plain down leaves
// nothing that bills).
func deleteSnapshots(ctx context.Context, api cloud.RDSAPI, n cloud.Names, log *progress) error {
	snaps, err := cloud.StackSnapshots(ctx, api, n)
	if err != nil {
		return err
	}
	var errs []error
	for _, sn := range snaps {
		id := aws.ToString(sn.DBSnapshotIdentifier)
		log.Step("deleting RDS snapshot %s", id)
		_, err := api.DeleteDBSnapshot(ctx, &rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: aws.String(id)})
		if err != nil && !cloud.HasCode(err, "DBSnapshotNotFound", "DBSnapshotNotFoundFault") {
			errs = append(errs, fmt.Errorf("deleting RDS snapshot %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// deleteDBNetwork deletes the database's security group (before the
// server's, which its rule names) and subnet group, retrying while RDS
// still holds their network interfaces.
func deleteDBNetwork(ctx context.Context, s *cloud.Session, n cloud.Names, log *progress) error {
	g, err := cloud.FindDBGroup(ctx, s.EC2, n)
	var foreign *cloud.NotOwnedError
	if errors.As(err, &foreign) {
		log.Warn("leaving security group %s alone: it is not tagged %s=%s", n.DBSecurityGroup, cloud.TagStack, n.Stack)
		g, err = &cloud.DBGroup{}, nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if g.ID != "" {
		log.Step("deleting security group %s (%s)", n.DBSecurityGroup, g.ID)
		err := cloud.RetryOn(ctx, dbNetworkWait, func(err error) bool { return cloud.HasCode(err, "DependencyViolation") }, nil, func() error {
			_, err := s.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(g.ID)})
			return err
		})
		if err != nil && !cloud.HasCode(err, "InvalidGroup.NotFound") {
			errs = append(errs, fmt.Errorf("deleting security group %s: %w", g.ID, err))
		}
	}
	has, err := cloud.HasSubnetGroup(ctx, s.RDS, n)
	if err != nil || !has {
		return errors.Join(append(errs, err)...)
	}
	log.Step("deleting DB subnet group %s", n.DBSubnetGroup)
	inUse := func(err error) bool {
		return cloud.HasCode(err, "InvalidDBSubnetGroupStateFault", "InvalidDBSubnetGroupState")
	}
	err = cloud.RetryOn(ctx, dbNetworkWait, inUse, nil, func() error {
		_, err := s.RDS.DeleteDBSubnetGroup(ctx, &rds.DeleteDBSubnetGroupInput{DBSubnetGroupName: aws.String(n.DBSubnetGroup)})
		return err
	})
	if err != nil && !cloud.HasCode(err, "DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound") {
		errs = append(errs, fmt.Errorf("deleting DB subnet group %s: %w", n.DBSubnetGroup, err))
	}
	return errors.Join(errs...)
}

// dbInventory is the status rows of what the stack owns of a database, and
// the database itself (nil for none). A same-named one without the stack's
// tag is not listed: it is not the stack's.
func dbInventory(ctx context.Context, s *cloud.Session, n cloud.Names) ([]cloud.Resource, *rdstypes.DBInstance, error) {
	f, err := cloud.FindDatabase(ctx, s, n)
	if err != nil {
		return nil, nil, err
	}
	var out []cloud.Resource
	if f.Inst != nil {
		out = append(out, cloud.Resource{Kind: cloud.KindDB, ID: n.DB, Name: n.DB, State: aws.ToString(f.Inst.DBInstanceStatus)})
	}
	if f.ForeignDB {
		out = append(out, cloud.Resource{Kind: cloud.KindDB, ID: n.DB, Name: n.DB, State: cloud.StateForeign})
	}
	if f.SG.ID != "" {
		out = append(out, cloud.Resource{Kind: cloud.KindSG, ID: f.SG.ID, Name: n.DBSecurityGroup, State: cloud.StateExists})
	}
	if f.SubnetGroup {
		out = append(out, cloud.Resource{Kind: cloud.KindDBSubnetGroup, ID: n.DBSubnetGroup, Name: n.DBSubnetGroup, State: cloud.StateExists})
	}
	for _, sn := range f.Snapshots {
		id := aws.ToString(sn.DBSnapshotIdentifier)
		out = append(out, cloud.Resource{Kind: cloud.KindDBSnapshot, ID: id, Name: id, State: aws.ToString(sn.Status)})
	}
	return out, f.Inst, nil
}

// listDatabases adds to set the stacks of every tagged RDS database of a
// region that has its stack's name.
func listDatabases(ctx context.Context, api cloud.RDSAPI, region string, set *cloud.StackSet) error {
	p := rds.NewDescribeDBInstancesPaginator(api, &rds.DescribeDBInstancesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing RDS databases in %s: %w", region, err)
		}
		for _, db := range page.DBInstances {
			id, tags := aws.ToString(db.DBInstanceIdentifier), cloud.RDSTagMap(db.TagList)
			if tags[cloud.TagStack] != "" && id == cloud.NamesFor(tags[cloud.TagStack], "", region).DB {
				set.Add(region, tags, cloud.Resource{Kind: cloud.KindDB, ID: id, Name: id, State: aws.ToString(db.DBInstanceStatus)},
					func(info *cloud.StackInfo) { info.Database = cloud.DBPostgres })
			}
		}
	}
	return nil
}

// notOnRDS refuses a command about the server's sqlite backups for a stack
// whose tracking data is in RDS, which backs it up by itself.
func notOnRDS(ctx context.Context, s *cloud.Session, n cloud.Names, cmd string) error {
	db, err := cloud.FindDBInstance(ctx, s.RDS, n)
	if err != nil || db == nil {
		return err
	}
	return cloud.Usagef("%s is about the sqlite backups in the bucket, and stack %s keeps its tracking data in RDS database %s: "+
		"RDS backs it up every day and restores it to any point of the last %d day (the RDS console's \"Restore to point in time\")",
		cmd, n.Stack, n.DB, cloud.DBBackupDays)
}
