package cloudfake

// RDS in the fake account: databases, subnet groups, snapshots. The states
// RDS passes through (when asked) and the classes it offers are
// internal/awsmodel's.

import (
	"cmp"
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
type fakeRDSAPI struct{ *FakeAWS }

type fakeRDS struct {
	dbs       map[string]*fakeDB
	Subnets   map[string]bool
	Snapshots map[string]*rdstypes.DBSnapshot
	// Model: Slow is how many describes show a database creating,
	// resetting its password or deleting; Classes what RDS offers.
	Model awsmodel.RDS
}

type fakeDB struct {
	DB       rdstypes.DBInstance
	Password string
	Snapshot string
}

func (r *fakeRDS) Init() {
	if r.dbs == nil {
		r.dbs, r.Subnets, r.Snapshots = map[string]*fakeDB{}, map[string]bool{}, map[string]*rdstypes.DBSnapshot{}
	}
}

func (f *FakeAWS) NewDB(id, class string, tags []rdstypes.Tag, password string) *fakeDB {
	r := &f.RDSState
	d := &fakeDB{Password: password, DB: rdstypes.DBInstance{
		DBInstanceIdentifier: aws.String(id), DBInstanceClass: aws.String(class), Engine: aws.String("postgres"),
		EngineVersion: aws.String("17.6"), DBInstanceStatus: aws.String("creating"), TagList: tags,
		DBInstanceArn:         aws.String(fmt.Sprintf("arn:%s:rds:%s:%s:db:%s", f.partition(), f.Region, f.Account, id)),
		PendingModifiedValues: &rdstypes.PendingModifiedValues{},
	}}
	r.dbs[id] = d
	r.Model.Created(id)
	return d
}

func (f fakeRDSAPI) DescribeDBInstances(_ context.Context, in *rds.DescribeDBInstancesInput, _ ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DescribeDBInstances", func() (*rds.DescribeDBInstancesOutput, error) {
		r := &f.RDSState
		r.Init()
		out := &rds.DescribeDBInstancesOutput{}
		for _, id := range slices.Sorted(maps.Keys(r.dbs)) {
			d := r.dbs[id]
			if in.DBInstanceIdentifier != nil && aws.ToString(in.DBInstanceIdentifier) != id {
				continue
			}
			if !f.describeDB(d) {
				continue
			}
			out.DBInstances = append(out.DBInstances, d.DB)
		}
		if in.DBInstanceIdentifier != nil && len(out.DBInstances) == 0 {
			return nil, AwsErr("DBInstanceNotFound")
		}
		var err error
		out.DBInstances, out.Marker, err = page(f.FakeAWS, "rds", "DescribeDBInstances", in, out.DBInstances,
			func(d rdstypes.DBInstance) string { return aws.ToString(d.DBInstanceIdentifier) })
		return out, err
	})
}

// describeDB moves a database to the state the model shows now; false:
// its deletion is over. Called with f.mu held.
func (f fakeRDSAPI) describeDB(d *fakeDB) bool {
	r := &f.RDSState
	id := aws.ToString(d.DB.DBInstanceIdentifier)
	status, exists := r.Model.Describe(id)
	switch {
	case !exists:
		delete(r.dbs, id)
		return false
	case status != "":
		d.DB.DBInstanceStatus = aws.String(status)
	default:
		d.DB.DBInstanceStatus = aws.String(awsmodel.DBAvailable)
		d.DB.Endpoint = &rdstypes.Endpoint{Address: aws.String(id + ".c0ffee.eu-west-3.rds.amazonaws.com"), Port: aws.Int32(5432)}
	}
	return true
}

func (f fakeRDSAPI) CreateDBInstance(_ context.Context, in *rds.CreateDBInstanceInput, _ ...func(*rds.Options)) (*rds.CreateDBInstanceOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "CreateDBInstance", func() (*rds.CreateDBInstanceOutput, error) {
		r := &f.RDSState
		r.Init()
		id := aws.ToString(in.DBInstanceIdentifier)
		if r.dbs[id] != nil {
			return nil, AwsErr("DBInstanceAlreadyExists")
		}
		if !r.Subnets[aws.ToString(in.DBSubnetGroupName)] {
			return nil, AwsErr("DBSubnetGroupNotFoundFault")
		}
		if !aws.ToBool(in.StorageEncrypted) || aws.ToBool(in.PubliclyAccessible) {
			return nil, AwsErrMsg("InvalidParameterCombination", "fake: mlstack's database is encrypted and private")
		}
		if err := r.Model.CreateDBInstance(aws.ToString(in.Engine), aws.ToString(in.EngineVersion), aws.ToString(in.DBInstanceClass)); err != nil {
			return nil, modelErr(err)
		}
		d := f.NewDB(id, aws.ToString(in.DBInstanceClass), in.Tags, aws.ToString(in.MasterUserPassword))
		return &rds.CreateDBInstanceOutput{DBInstance: &d.DB}, nil
	})
}

func (f fakeRDSAPI) RestoreDBInstanceFromDBSnapshot(_ context.Context, in *rds.RestoreDBInstanceFromDBSnapshotInput, _ ...func(*rds.Options)) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "RestoreDBInstanceFromDBSnapshot", func() (*rds.RestoreDBInstanceFromDBSnapshotOutput, error) {
		r := &f.RDSState
		r.Init()
		id, snap := aws.ToString(in.DBInstanceIdentifier), aws.ToString(in.DBSnapshotIdentifier)
		if r.dbs[id] != nil {
			return nil, AwsErr("DBInstanceAlreadyExists")
		}
		if r.Snapshots[snap] == nil {
			return nil, AwsErr("DBSnapshotNotFound")
		}
		d := f.NewDB(id, aws.ToString(in.DBInstanceClass), in.Tags, "the snapshot's")
		d.Snapshot = snap
		return &rds.RestoreDBInstanceFromDBSnapshotOutput{DBInstance: &d.DB}, nil
	})
}

func (f fakeRDSAPI) ModifyDBInstance(_ context.Context, in *rds.ModifyDBInstanceInput, _ ...func(*rds.Options)) (*rds.ModifyDBInstanceOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "ModifyDBInstance", func() (*rds.ModifyDBInstanceOutput, error) {
		f.RDSState.Init()
		d := f.RDSState.dbs[aws.ToString(in.DBInstanceIdentifier)]
		if d == nil {
			return nil, AwsErr("DBInstanceNotFound")
		}
		if in.MasterUserPassword != nil {
			d.Password = aws.ToString(in.MasterUserPassword)
		}
		f.RDSState.Model.Modified(aws.ToString(in.DBInstanceIdentifier), in.MasterUserPassword != nil)
		return &rds.ModifyDBInstanceOutput{DBInstance: &d.DB}, nil
	})
}

func (f fakeRDSAPI) DeleteDBInstance(_ context.Context, in *rds.DeleteDBInstanceInput, _ ...func(*rds.Options)) (*rds.DeleteDBInstanceOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DeleteDBInstance", func() (*rds.DeleteDBInstanceOutput, error) {
		r := &f.RDSState
		r.Init()
		id := aws.ToString(in.DBInstanceIdentifier)
		d := r.dbs[id]
		if d == nil || aws.ToString(d.DB.DBInstanceStatus) == awsmodel.DBDeleting {
			return nil, AwsErr("DBInstanceNotFound")
		}
		if err := r.Model.Delete(id); err != nil {
			return nil, modelErr(err)
		}
		if !aws.ToBool(in.SkipFinalSnapshot) {
			snap := aws.ToString(in.FinalDBSnapshotIdentifier)
			r.Snapshots[snap] = &rdstypes.DBSnapshot{DBSnapshotIdentifier: aws.String(snap), DBInstanceIdentifier: aws.String(id),
				Status: aws.String("available"), SnapshotType: aws.String("manual"), SnapshotCreateTime: aws.Time(f.tick()), TagList: d.DB.TagList}
		}
		// Gone at once, unless the model shows it deleting for a while.
		r.Model.Deleted(id)
		if r.Model.Slow == 0 {
			delete(r.dbs, id)
		} else {
			d.DB.DBInstanceStatus = aws.String(awsmodel.DBDeleting)
		}
		return &rds.DeleteDBInstanceOutput{DBInstance: &d.DB}, nil
	})
}

func (f fakeRDSAPI) DescribeDBSubnetGroups(_ context.Context, in *rds.DescribeDBSubnetGroupsInput, _ ...func(*rds.Options)) (*rds.DescribeDBSubnetGroupsOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DescribeDBSubnetGroups", func() (*rds.DescribeDBSubnetGroupsOutput, error) {
		f.RDSState.Init()
		name := aws.ToString(in.DBSubnetGroupName)
		if !f.RDSState.Subnets[name] {
			return nil, AwsErr("DBSubnetGroupNotFoundFault")
		}
		return &rds.DescribeDBSubnetGroupsOutput{DBSubnetGroups: []rdstypes.DBSubnetGroup{{DBSubnetGroupName: aws.String(name)}}}, nil
	})
}

func (f fakeRDSAPI) CreateDBSubnetGroup(_ context.Context, in *rds.CreateDBSubnetGroupInput, _ ...func(*rds.Options)) (*rds.CreateDBSubnetGroupOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "CreateDBSubnetGroup", func() (*rds.CreateDBSubnetGroupOutput, error) {
		f.RDSState.Init()
		name := aws.ToString(in.DBSubnetGroupName)
		if f.RDSState.Subnets[name] {
			return nil, AwsErr("DBSubnetGroupAlreadyExists")
		}
		f.RDSState.Subnets[name] = true
		return &rds.CreateDBSubnetGroupOutput{}, nil
	})
}

func (f fakeRDSAPI) DeleteDBSubnetGroup(_ context.Context, in *rds.DeleteDBSubnetGroupInput, _ ...func(*rds.Options)) (*rds.DeleteDBSubnetGroupOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DeleteDBSubnetGroup", func() (*rds.DeleteDBSubnetGroupOutput, error) {
		f.RDSState.Init()
		name := aws.ToString(in.DBSubnetGroupName)
		if !f.RDSState.Subnets[name] {
			return nil, AwsErr("DBSubnetGroupNotFoundFault")
		}
		if len(f.RDSState.dbs) > 0 {
			return nil, AwsErr("InvalidDBSubnetGroupStateFault")
		}
		delete(f.RDSState.Subnets, name)
		return &rds.DeleteDBSubnetGroupOutput{}, nil
	})
}

func (f fakeRDSAPI) DescribeDBSnapshots(_ context.Context, in *rds.DescribeDBSnapshotsInput, _ ...func(*rds.Options)) (*rds.DescribeDBSnapshotsOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DescribeDBSnapshots", func() (*rds.DescribeDBSnapshotsOutput, error) {
		f.RDSState.Init()
		out := &rds.DescribeDBSnapshotsOutput{}
		for _, id := range slices.Sorted(maps.Keys(f.RDSState.Snapshots)) {
			s := f.RDSState.Snapshots[id]
			if in.DBInstanceIdentifier == nil || aws.ToString(s.DBInstanceIdentifier) == aws.ToString(in.DBInstanceIdentifier) {
				out.DBSnapshots = append(out.DBSnapshots, *s)
			}
		}
		var err error
		out.DBSnapshots, out.Marker, err = page(f.FakeAWS, "rds", "DescribeDBSnapshots", in, out.DBSnapshots,
			func(s rdstypes.DBSnapshot) string { return aws.ToString(s.DBSnapshotIdentifier) })
		return out, err
	})
}

func (f fakeRDSAPI) DeleteDBSnapshot(_ context.Context, in *rds.DeleteDBSnapshotInput, _ ...func(*rds.Options)) (*rds.DeleteDBSnapshotOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DeleteDBSnapshot", func() (*rds.DeleteDBSnapshotOutput, error) {
		f.RDSState.Init()
		id := aws.ToString(in.DBSnapshotIdentifier)
		if f.RDSState.Snapshots[id] == nil {
			return nil, AwsErr("DBSnapshotNotFound")
		}
		delete(f.RDSState.Snapshots, id)
		return &rds.DeleteDBSnapshotOutput{}, nil
	})
}

func (f fakeRDSAPI) DescribeOrderableDBInstanceOptions(_ context.Context, in *rds.DescribeOrderableDBInstanceOptionsInput, _ ...func(*rds.Options)) (*rds.DescribeOrderableDBInstanceOptionsOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DescribeOrderableDBInstanceOptions", func() (*rds.DescribeOrderableDBInstanceOptionsOutput, error) {
		out := &rds.DescribeOrderableDBInstanceOptionsOutput{}
		c, v := aws.ToString(in.DBInstanceClass), aws.ToString(in.EngineVersion)
		if f.RDSState.Model.Offers(aws.ToString(in.Engine), v, c) {
			out.OrderableDBInstanceOptions = []rdstypes.OrderableDBInstanceOption{{DBInstanceClass: aws.String(c), Engine: aws.String("postgres"),
				EngineVersion: aws.String(cmp.Or(v, f.RDSState.Model.DefaultVersion("postgres", cloud.DBEngineVersion)))}}
		}
		var err error
		out.OrderableDBInstanceOptions, out.Marker, err = page(f.FakeAWS, "rds", "DescribeOrderableDBInstanceOptions", in, out.OrderableDBInstanceOptions,
			func(o rdstypes.OrderableDBInstanceOption) string { return aws.ToString(o.DBInstanceClass) })
		return out, err
	})
}

func (f fakeRDSAPI) DescribeDBEngineVersions(_ context.Context, in *rds.DescribeDBEngineVersionsInput, _ ...func(*rds.Options)) (*rds.DescribeDBEngineVersionsOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "DescribeDBEngineVersions", func() (*rds.DescribeDBEngineVersionsOutput, error) {
		out := &rds.DescribeDBEngineVersionsOutput{}
		if v := f.RDSState.Model.DefaultVersion(aws.ToString(in.Engine), aws.ToString(in.EngineVersion)); v != "" && aws.ToBool(in.DefaultOnly) {
			out.DBEngineVersions = []rdstypes.DBEngineVersion{{Engine: in.Engine, EngineVersion: aws.String(v)}}
		}
		return out, nil
	})
}

func (f fakeRDSAPI) AddTagsToResource(_ context.Context, in *rds.AddTagsToResourceInput, _ ...func(*rds.Options)) (*rds.AddTagsToResourceOutput, error) {
	return fakeCall(f.FakeAWS, in, "RDS", "AddTagsToResource", func() (*rds.AddTagsToResourceOutput, error) {
		f.RDSState.Init()
		for _, d := range f.RDSState.dbs {
			if aws.ToString(d.DB.DBInstanceArn) == aws.ToString(in.ResourceName) {
				m := cloud.RDSTagMap(d.DB.TagList)
				maps.Copy(m, cloud.RDSTagMap(in.Tags))
				d.DB.TagList = cloud.RDSTags(m)
				return &rds.AddTagsToResourceOutput{}, nil
			}
		}
		return nil, AwsErr("DBInstanceNotFound")
	})
}

// ParamValue is a parameter's value in the fake SSM ("" for none).
func (f *FakeAWS) ParamValue(name string) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if p := f.Params[name]; p != nil {
		return p.Value
	}
	return ""
}

// GroupNamed is the security group of that name, nil for none.
func (f *FakeAWS) GroupNamed(name string) *ec2types.SecurityGroup {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for _, g := range f.Groups {
		if aws.ToString(g.SG.GroupName) == name {
			sg := g.SG
			return &sg
		}
	}
	return nil
}

func (f *FakeAWS) DB(id string) *fakeDB {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.RDSState.Init()
	return f.RDSState.dbs[id]
}
