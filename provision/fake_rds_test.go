package provision

// RDS in the fake account: databases, subnet groups, snapshots. The states
// RDS passes through (when asked) and the classes it offers are
// internal/awsmodel's.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// fakeRDSAPI is the fake account's RDS client (SSM has an AddTagsToResource too).
type fakeRDSAPI struct{ *fakeAWS }

type fakeRDS struct {
	dbs       map[string]*fakeDB
	subnets   map[string]bool
	snapshots map[string]*rdstypes.DBSnapshot
	// model: Slow is how many describes show a database creating,
	// resetting its password or deleting; Classes what RDS offers.
	model awsmodel.RDS
}

type fakeDB struct {
	db       rdstypes.DBInstance
	password string
	snapshot string
}

func (r *fakeRDS) init() {
	if r.dbs == nil {
		r.dbs, r.subnets, r.snapshots = map[string]*fakeDB{}, map[string]bool{}, map[string]*rdstypes.DBSnapshot{}
	}
}

func (f *fakeAWS) newDB(id, class string, tags []rdstypes.Tag, password string) *fakeDB {
	r := &f.rdsState
	d := &fakeDB{password: password, db: rdstypes.DBInstance{
		DBInstanceIdentifier: aws.String(id), DBInstanceClass: aws.String(class), Engine: aws.String("postgres"),
		EngineVersion: aws.String("17.6"), DBInstanceStatus: aws.String("creating"), TagList: tags,
		DBInstanceArn:         aws.String(fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", f.region, f.account, id)),
		PendingModifiedValues: &rdstypes.PendingModifiedValues{},
	}}
	r.dbs[id] = d
	r.model.Created(id)
	return d
}

func (f fakeRDSAPI) DescribeDBInstances(_ context.Context, in *rds.DescribeDBInstancesInput, _ ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DescribeDBInstances", func() (*rds.DescribeDBInstancesOutput, error) {
		r := &f.rdsState
		r.init()
		out := &rds.DescribeDBInstancesOutput{}
		for _, id := range slices.Sorted(maps.Keys(r.dbs)) {
			d := r.dbs[id]
			if in.DBInstanceIdentifier != nil && aws.ToString(in.DBInstanceIdentifier) != id {
				continue
			}
			if !f.describeDB(d) {
				continue
			}
			out.DBInstances = append(out.DBInstances, d.db)
		}
		if in.DBInstanceIdentifier != nil && len(out.DBInstances) == 0 {
			return nil, awsErr("DBInstanceNotFound")
		}
		return out, nil
	})
}

// describeDB moves a database to the state the model shows now; false:
// its deletion is over. Called with f.mu held.
func (f fakeRDSAPI) describeDB(d *fakeDB) bool {
	r := &f.rdsState
	id := aws.ToString(d.db.DBInstanceIdentifier)
	status, exists := r.model.Describe(id)
	switch {
	case !exists:
		delete(r.dbs, id)
		return false
	case status != "":
		d.db.DBInstanceStatus = aws.String(status)
	default:
		d.db.DBInstanceStatus = aws.String(awsmodel.DBAvailable)
		d.db.Endpoint = &rdstypes.Endpoint{Address: aws.String(id + ".c0ffee.eu-west-3.rds.amazonaws.com"), Port: aws.Int32(5432)}
	}
	return true
}

func (f fakeRDSAPI) CreateDBInstance(_ context.Context, in *rds.CreateDBInstanceInput, _ ...func(*rds.Options)) (*rds.CreateDBInstanceOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "CreateDBInstance", func() (*rds.CreateDBInstanceOutput, error) {
		r := &f.rdsState
		r.init()
		id := aws.ToString(in.DBInstanceIdentifier)
		if r.dbs[id] != nil {
			return nil, awsErr("DBInstanceAlreadyExists")
		}
		if !r.subnets[aws.ToString(in.DBSubnetGroupName)] {
			return nil, awsErr("DBSubnetGroupNotFoundFault")
		}
		if !aws.ToBool(in.StorageEncrypted) || aws.ToBool(in.PubliclyAccessible) {
			return nil, awsErrMsg("InvalidParameterCombination", "fake: mlstack's database is encrypted and private")
		}
		d := f.newDB(id, aws.ToString(in.DBInstanceClass), in.Tags, aws.ToString(in.MasterUserPassword))
		return &rds.CreateDBInstanceOutput{DBInstance: &d.db}, nil
	})
}

func (f fakeRDSAPI) RestoreDBInstanceFromDBSnapshot(_ context.Context, in *rds.RestoreDBInstanceFromDBSnapshotInput, _ ...func(*rds.Options)) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "RestoreDBInstanceFromDBSnapshot", func() (*rds.RestoreDBInstanceFromDBSnapshotOutput, error) {
		r := &f.rdsState
		r.init()
		id, snap := aws.ToString(in.DBInstanceIdentifier), aws.ToString(in.DBSnapshotIdentifier)
		if r.dbs[id] != nil {
			return nil, awsErr("DBInstanceAlreadyExists")
		}
		if r.snapshots[snap] == nil {
			return nil, awsErr("DBSnapshotNotFound")
		}
		d := f.newDB(id, aws.ToString(in.DBInstanceClass), in.Tags, "the snapshot's")
		d.snapshot = snap
		return &rds.RestoreDBInstanceFromDBSnapshotOutput{DBInstance: &d.db}, nil
	})
}

func (f fakeRDSAPI) ModifyDBInstance(_ context.Context, in *rds.ModifyDBInstanceInput, _ ...func(*rds.Options)) (*rds.ModifyDBInstanceOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "ModifyDBInstance", func() (*rds.ModifyDBInstanceOutput, error) {
		f.rdsState.init()
		d := f.rdsState.dbs[aws.ToString(in.DBInstanceIdentifier)]
		if d == nil {
			return nil, awsErr("DBInstanceNotFound")
		}
		if in.MasterUserPassword != nil {
			d.password = aws.ToString(in.MasterUserPassword)
		}
		f.rdsState.model.Modified(aws.ToString(in.DBInstanceIdentifier), in.MasterUserPassword != nil)
		return &rds.ModifyDBInstanceOutput{DBInstance: &d.db}, nil
	})
}

func (f fakeRDSAPI) DeleteDBInstance(_ context.Context, in *rds.DeleteDBInstanceInput, _ ...func(*rds.Options)) (*rds.DeleteDBInstanceOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DeleteDBInstance", func() (*rds.DeleteDBInstanceOutput, error) {
		r := &f.rdsState
		r.init()
		id := aws.ToString(in.DBInstanceIdentifier)
		d := r.dbs[id]
		if d == nil || aws.ToString(d.db.DBInstanceStatus) == awsmodel.DBDeleting {
			return nil, awsErr("DBInstanceNotFound")
		}
		if err := r.model.Delete(id); err != nil {
			return nil, modelErr(err)
		}
		if !aws.ToBool(in.SkipFinalSnapshot) {
			snap := aws.ToString(in.FinalDBSnapshotIdentifier)
			r.snapshots[snap] = &rdstypes.DBSnapshot{DBSnapshotIdentifier: aws.String(snap), DBInstanceIdentifier: aws.String(id),
				Status: aws.String("available"), SnapshotType: aws.String("manual"), SnapshotCreateTime: aws.Time(f.tick()), TagList: d.db.TagList}
		}
		// Gone at once, unless the model shows it deleting for a while.
		r.model.Deleted(id)
		if r.model.Slow == 0 {
			delete(r.dbs, id)
		} else {
			d.db.DBInstanceStatus = aws.String(awsmodel.DBDeleting)
		}
		return &rds.DeleteDBInstanceOutput{DBInstance: &d.db}, nil
	})
}

func (f fakeRDSAPI) DescribeDBSubnetGroups(_ context.Context, in *rds.DescribeDBSubnetGroupsInput, _ ...func(*rds.Options)) (*rds.DescribeDBSubnetGroupsOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DescribeDBSubnetGroups", func() (*rds.DescribeDBSubnetGroupsOutput, error) {
		f.rdsState.init()
		name := aws.ToString(in.DBSubnetGroupName)
		if !f.rdsState.subnets[name] {
			return nil, awsErr("DBSubnetGroupNotFoundFault")
		}
		return &rds.DescribeDBSubnetGroupsOutput{DBSubnetGroups: []rdstypes.DBSubnetGroup{{DBSubnetGroupName: aws.String(name)}}}, nil
	})
}

func (f fakeRDSAPI) CreateDBSubnetGroup(_ context.Context, in *rds.CreateDBSubnetGroupInput, _ ...func(*rds.Options)) (*rds.CreateDBSubnetGroupOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "CreateDBSubnetGroup", func() (*rds.CreateDBSubnetGroupOutput, error) {
		f.rdsState.init()
		name := aws.ToString(in.DBSubnetGroupName)
		if f.rdsState.subnets[name] {
			return nil, awsErr("DBSubnetGroupAlreadyExists")
		}
		f.rdsState.subnets[name] = true
		return &rds.CreateDBSubnetGroupOutput{}, nil
	})
}

func (f fakeRDSAPI) DeleteDBSubnetGroup(_ context.Context, in *rds.DeleteDBSubnetGroupInput, _ ...func(*rds.Options)) (*rds.DeleteDBSubnetGroupOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DeleteDBSubnetGroup", func() (*rds.DeleteDBSubnetGroupOutput, error) {
		f.rdsState.init()
		name := aws.ToString(in.DBSubnetGroupName)
		if !f.rdsState.subnets[name] {
			return nil, awsErr("DBSubnetGroupNotFoundFault")
		}
		if len(f.rdsState.dbs) > 0 {
			return nil, awsErr("InvalidDBSubnetGroupStateFault")
		}
		delete(f.rdsState.subnets, name)
		return &rds.DeleteDBSubnetGroupOutput{}, nil
	})
}

func (f fakeRDSAPI) DescribeDBSnapshots(_ context.Context, in *rds.DescribeDBSnapshotsInput, _ ...func(*rds.Options)) (*rds.DescribeDBSnapshotsOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DescribeDBSnapshots", func() (*rds.DescribeDBSnapshotsOutput, error) {
		f.rdsState.init()
		out := &rds.DescribeDBSnapshotsOutput{}
		for _, id := range slices.Sorted(maps.Keys(f.rdsState.snapshots)) {
			s := f.rdsState.snapshots[id]
			if in.DBInstanceIdentifier == nil || aws.ToString(s.DBInstanceIdentifier) == aws.ToString(in.DBInstanceIdentifier) {
				out.DBSnapshots = append(out.DBSnapshots, *s)
			}
		}
		return out, nil
	})
}

func (f fakeRDSAPI) DeleteDBSnapshot(_ context.Context, in *rds.DeleteDBSnapshotInput, _ ...func(*rds.Options)) (*rds.DeleteDBSnapshotOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DeleteDBSnapshot", func() (*rds.DeleteDBSnapshotOutput, error) {
		f.rdsState.init()
		id := aws.ToString(in.DBSnapshotIdentifier)
		if f.rdsState.snapshots[id] == nil {
			return nil, awsErr("DBSnapshotNotFound")
		}
		delete(f.rdsState.snapshots, id)
		return &rds.DeleteDBSnapshotOutput{}, nil
	})
}

func (f fakeRDSAPI) DescribeOrderableDBInstanceOptions(_ context.Context, in *rds.DescribeOrderableDBInstanceOptionsInput, _ ...func(*rds.Options)) (*rds.DescribeOrderableDBInstanceOptionsOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "DescribeOrderableDBInstanceOptions", func() (*rds.DescribeOrderableDBInstanceOptionsOutput, error) {
		out := &rds.DescribeOrderableDBInstanceOptionsOutput{}
		if c := aws.ToString(in.DBInstanceClass); f.rdsState.model.Offers(aws.ToString(in.Engine), c) {
			out.OrderableDBInstanceOptions = []rdstypes.OrderableDBInstanceOption{{DBInstanceClass: aws.String(c), Engine: aws.String("postgres")}}
		}
		return out, nil
	})
}

func (f fakeRDSAPI) AddTagsToResource(_ context.Context, in *rds.AddTagsToResourceInput, _ ...func(*rds.Options)) (*rds.AddTagsToResourceOutput, error) {
	return fakeCall(f.fakeAWS, in, "RDS", "AddTagsToResource", func() (*rds.AddTagsToResourceOutput, error) {
		f.rdsState.init()
		for _, d := range f.rdsState.dbs {
			if aws.ToString(d.db.DBInstanceArn) == aws.ToString(in.ResourceName) {
				m := cloud.RDSTagMap(d.db.TagList)
				maps.Copy(m, cloud.RDSTagMap(in.Tags))
				d.db.TagList = cloud.RDSTags(m)
				return &rds.AddTagsToResourceOutput{}, nil
			}
		}
		return nil, awsErr("DBInstanceNotFound")
	})
}

// paramValue is a parameter's value in the fake SSM ("" for none).
func (f *fakeAWS) paramValue(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.params[name]; p != nil {
		return p.value
	}
	return ""
}

// groupNamed is the security group of that name, nil for none.
func (f *fakeAWS) groupNamed(name string) *ec2types.SecurityGroup {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.groups {
		if aws.ToString(g.sg.GroupName) == name {
			sg := g.sg
			return &sg
		}
	}
	return nil
}
