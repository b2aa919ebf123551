package provision

// down's, status's and ls's side of the database.

import (
	"context"
	"errors"
	"fmt"
	"time"

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
func deleteDatabase(ctx context.Context, s *session, n names, keep bool, log *progress) error {
	db, err := findDBInstance(ctx, s.rds, n)
	var foreign *notOwnedError
	if errors.As(err, &foreign) {
		log.Warn("leaving RDS database %s alone: it is not tagged %s=%s", n.DB, tagStack, n.Stack)
		db, err = nil, nil
	}
	if err != nil {
		return err
	}
	if db != nil {
		if err := deleteDBInstance(ctx, s.rds, n, db, keep, log); err != nil {
			return err
		}
	}
	if !keep {
		if err := deleteSnapshots(ctx, s.rds, n, log); err != nil {
			return err
		}
	}
	return deleteDBNetwork(ctx, s, n, log)
}

// deleteDBInstance asks RDS to delete the database (a new one that is
// still being made is waited for: RDS refuses until then) and waits until
// it is gone.
func deleteDBInstance(ctx context.Context, api rdsAPI, n names, db *rdstypes.DBInstance, keep bool, log *progress) error {
	if aws.ToString(db.DBInstanceStatus) != "deleting" {
		in := &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(n.DB), DeleteAutomatedBackups: aws.Bool(true), SkipFinalSnapshot: aws.Bool(!keep)}
		if keep {
			in.FinalDBSnapshotIdentifier = aws.String(n.DB + "-final-" + time.Now().UTC().Format("20060102-150405"))
			log.Step("deleting RDS database %s after a final snapshot %s, which is kept", n.DB, aws.ToString(in.FinalDBSnapshotIdentifier))
		} else {
			log.Step("deleting RDS database %s and its automated backups (no final snapshot)", n.DB)
		}
		busy := func(err error) bool { return hasCode(err, "InvalidDBInstanceState", "InvalidDBInstanceStateFault") }
		err := retryOn(ctx, dbWaitFor, busy, nil, func() error {
			_, err := api.DeleteDBInstance(ctx, in)
			return err
		})
		if err != nil && !hasCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
			return fmt.Errorf("deleting RDS database %s: %w", n.DB, err)
		}
	}
	return waitDBGone(ctx, api, n, log)
}

// waitDBGone waits until RDS no longer lists the database.
func waitDBGone(ctx context.Context, api rdsAPI, n names, log *progress) error {
	_, err := pollDatabase(ctx, api, n, dbWaitFor, log.Wait("waiting for RDS to delete database %s (it takes minutes)", n.DB),
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
func deleteSnapshots(ctx context.Context, api rdsAPI, n names, log *progress) error {
	snaps, err := stackSnapshots(ctx, api, n)
	if err != nil {
		return err
	}
	var errs []error
	for _, sn := range snaps {
		id := aws.ToString(sn.DBSnapshotIdentifier)
		log.Step("deleting RDS snapshot %s", id)
		_, err := api.DeleteDBSnapshot(ctx, &rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: aws.String(id)})
		if err != nil && !hasCode(err, "DBSnapshotNotFound", "DBSnapshotNotFoundFault") {
			errs = append(errs, fmt.Errorf("deleting RDS snapshot %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// deleteDBNetwork deletes the database's security group (before the
// server's, which its rule names) and subnet group, retrying while RDS
// still holds their network interfaces.
func deleteDBNetwork(ctx context.Context, s *session, n names, log *progress) error {
	g, err := findDBGroup(ctx, s.ec2, n)
	var foreign *notOwnedError
	if errors.As(err, &foreign) {
		log.Warn("leaving security group %s alone: it is not tagged %s=%s", n.DBSecurityGroup, tagStack, n.Stack)
		g, err = &dbGroup{}, nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if g.id != "" {
		log.Step("deleting security group %s (%s)", n.DBSecurityGroup, g.id)
		err := retryOn(ctx, dbNetworkWait, func(err error) bool { return hasCode(err, "DependencyViolation") }, nil, func() error {
			_, err := s.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(g.id)})
			return err
		})
		if err != nil && !hasCode(err, "InvalidGroup.NotFound") {
			errs = append(errs, fmt.Errorf("deleting security group %s: %w", g.id, err))
		}
	}
	has, err := hasSubnetGroup(ctx, s.rds, n)
	if err != nil || !has {
		return errors.Join(append(errs, err)...)
	}
	log.Step("deleting DB subnet group %s", n.DBSubnetGroup)
	inUse := func(err error) bool {
		return hasCode(err, "InvalidDBSubnetGroupStateFault", "InvalidDBSubnetGroupState")
	}
	err = retryOn(ctx, dbNetworkWait, inUse, nil, func() error {
		_, err := s.rds.DeleteDBSubnetGroup(ctx, &rds.DeleteDBSubnetGroupInput{DBSubnetGroupName: aws.String(n.DBSubnetGroup)})
		return err
	})
	if err != nil && !hasCode(err, "DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound") {
		errs = append(errs, fmt.Errorf("deleting DB subnet group %s: %w", n.DBSubnetGroup, err))
	}
	return errors.Join(errs...)
}

// dbInventory is the status rows of what the stack owns of a database, and
// the database itself (nil for none). A same-named one without the stack's
// tag is not listed: it is not the stack's.
func dbInventory(ctx context.Context, s *session, n names) ([]resource, *rdstypes.DBInstance, error) {
	f, err := findDatabase(ctx, s, n)
	if err != nil {
		return nil, nil, err
	}
	var out []resource
	if f.inst != nil {
		out = append(out, resource{Kind: kindDB, ID: n.DB, Name: n.DB, State: aws.ToString(f.inst.DBInstanceStatus)})
	}
	if f.foreignDB {
		out = append(out, resource{Kind: kindDB, ID: n.DB, Name: n.DB, State: stateForeign})
	}
	if f.sg.id != "" {
		out = append(out, resource{Kind: kindSG, ID: f.sg.id, Name: n.DBSecurityGroup, State: stateExists})
	}
	if f.subnetGroup {
		out = append(out, resource{Kind: kindDBSubnetGroup, ID: n.DBSubnetGroup, Name: n.DBSubnetGroup, State: stateExists})
	}
	for _, sn := range f.snapshots {
		id := aws.ToString(sn.DBSnapshotIdentifier)
		out = append(out, resource{Kind: kindDBSnapshot, ID: id, Name: id, State: aws.ToString(sn.Status)})
	}
	return out, f.inst, nil
}

// listDatabases adds to set the stacks of every tagged RDS database of a
// region that has its stack's name.
func listDatabases(ctx context.Context, api rdsAPI, region string, set *stackSet) error {
	p := rds.NewDescribeDBInstancesPaginator(api, &rds.DescribeDBInstancesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing RDS databases in %s: %w", region, err)
		}
		for _, db := range page.DBInstances {
			id, tags := aws.ToString(db.DBInstanceIdentifier), rdsTagMap(db.TagList)
			if tags[tagStack] != "" && id == namesFor(tags[tagStack], "", region).DB {
				set.add(region, tags, resource{Kind: kindDB, ID: id, Name: id, State: aws.ToString(db.DBInstanceStatus)},
					func(info *stackInfo) { info.Database = DBPostgres })
			}
		}
	}
	return nil
}

// notOnRDS refuses a command about the server's sqlite backups for a stack
// whose tracking data is in RDS, which backs it up by itself.
func notOnRDS(ctx context.Context, s *session, n names, cmd string) error {
	db, err := findDBInstance(ctx, s.rds, n)
	if err != nil || db == nil {
		return err
	}
	return usagef("%s is about the sqlite backups in the bucket, and stack %s keeps its tracking data in RDS database %s: "+
		"RDS backs it up every day and restores it to any point of the last %d day (the RDS console's \"Restore to point in time\")",
		cmd, n.Stack, n.DB, dbBackupDays)
}
