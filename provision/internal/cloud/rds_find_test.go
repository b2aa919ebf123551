package cloud_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// addSnapshot keeps a final snapshot of the demo database in f.
func addSnapshot(f *cloudfake.FakeAWS, id, status string, at time.Time, tags map[string]string) {
	f.RDSState.Init()
	f.RDSState.Snapshots[id] = &rdstypes.DBSnapshot{
		DBSnapshotIdentifier: aws.String(id), DBInstanceIdentifier: aws.String("mlstack-demo"),
		Status: aws.String(status), SnapshotCreateTime: aws.Time(at), TagList: cloud.RDSTags(tags),
	}
}

func TestFindDatabaseOfAnEmptyAccount(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	db, err := cloud.FindDatabase(f.Ctx(), f.Session(), n)
	must(t, err)
	if db.Exists() || db.Inst != nil || db.SubnetGroup || db.SG.ID != "" || db.SG.VpcID != "vpc-0default" || !db.NetworkRead || db.Foreign != nil {
		t.Fatalf("found %+v", db)
	}
	var steps []string
	for _, s := range db.Plan(n, "db.t4g.micro") {
		steps = append(steps, s.Kind+": "+s.Text)
	}
	want := []string{
		cloud.KindParam + ": store db-password as SSM SecureString /mlstack/demo/db-password",
		cloud.KindSG + ": create security group mlstack-demo.db letting security group mlstack-demo reach tcp 5432",
		cloud.KindDBSubnetGroup + ": create DB subnet group mlstack-demo over the default VPC's default subnets",
		cloud.KindDB + ": create RDS database mlstack-demo: PostgreSQL 17, db.t4g.micro, 20 GiB encrypted, not public, automated backups kept 1 day",
		cloud.KindParam + ": write SSM parameter /mlstack/demo/database once the database is available (the server waits for it)",
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan\n%s\nwant\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}

	// Without network, neither group is read.
	f.ResetCalls()
	db, err = cloud.FindDatabaseOf(f.Ctx(), f.Session(), n, false)
	must(t, err)
	if db.NetworkRead || f.Count("EC2.DescribeSecurityGroups") != 0 || f.Count("RDS.DescribeDBSubnetGroups") != 0 {
		t.Errorf("found %+v, calls %v", db, f.Calls())
	}
	var nilDB *cloud.DBFound
	if nilDB.Exists() {
		t.Error("nil exists")
	}
}

func TestFindDatabaseOfAComplete(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	f.RDSState.Init()
	f.NewDB(n.DB, "db.t4g.micro", cloud.RDSTags(tags), "pw")
	f.RDSState.Subnets[n.DBSubnetGroup] = true
	server := f.AddGroup(n.SecurityGroup, tags)
	dbsg := f.AddGroup(n.DBSecurityGroup, tags, ec2types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(cloud.DBPort), ToPort: aws.Int32(cloud.DBPort),
		UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(server)}},
	})
	now := time.Now()
	addSnapshot(f, n.DB+"-final-1", "available", now.Add(-2*time.Hour), tags)
	addSnapshot(f, n.DB+"-final-2", "available", now.Add(-time.Hour), tags)
	addSnapshot(f, n.DB+"-final-3", "creating", now, tags)
	addSnapshot(f, n.DB+"-final-4", "available", now, cloudfake.StackTagsFor("other", now))
	addSnapshot(f, n.DB+"-manual", "available", now, tags)

	db, err := cloud.FindDatabase(f.Ctx(), f.Session(), n)
	must(t, err)
	if db.Inst == nil || !db.SubnetGroup || db.SG.ID != dbsg || !db.SG.Open || !db.Exists() {
		t.Fatalf("found %+v, group %+v", db, db.SG)
	}
	var snaps []string
	for _, s := range db.Snapshots {
		snaps = append(snaps, *s.DBSnapshotIdentifier)
	}
	if strings.Join(snaps, " ") != "mlstack-demo-final-3 mlstack-demo-final-2 mlstack-demo-final-1" || db.Restorable() != "mlstack-demo-final-2" {
		t.Errorf("snapshots %v, restorable %q", snaps, db.Restorable())
	}
	ep, err := cloud.EndpointOf(db.Inst)
	must(t, err)
	var got cloud.DBEndpoint
	must(t, json.Unmarshal([]byte(ep), &got))
	if got.Host != "mlstack-demo.c0ffee.eu-west-3.rds.amazonaws.com" || got.Port != 5432 || got.Name != cloud.DBName || got.User != cloud.DBUser {
		t.Errorf("endpoint %+v", got)
	}
	db.Password, db.Endpoint = "pw", ep
	if p := db.Plan(n, "db.t4g.micro"); len(p) != 0 {
		t.Errorf("plan of a complete database %+v", p)
	}

	// The database gone, its snapshot kept: restore, keeping the snapshot's class.
	db.Inst = nil
	p := db.Plan(n, "")
	if len(p) != 2 || p[0].Text != "restore RDS database mlstack-demo (the class it had) from its kept snapshot mlstack-demo-final-2, and give it a new master password" {
		t.Errorf("plan %+v", p)
	}
	// The group there but closed: open it.
	db.SG.Open = false
	if p := db.Plan(n, "db.t3.micro"); !strings.Contains(p[0].Text, "let security group mlstack-demo reach tcp 5432 through mlstack-demo.db") {
		t.Errorf("plan %+v", p)
	}
}

func TestFindDatabaseKeepsLookalikesApart(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)

	f := cloudfake.NewFakeAWS()
	f.RDSState.Init()
	f.NewDB(n.DB, "db.t3.micro", nil, "pw")
	db, err := cloud.FindDatabase(f.Ctx(), f.Session(), n)
	var no *cloud.NotOwnedError
	if err != nil || !db.ForeignDB || db.Inst != nil || !errors.As(db.Foreign, &no) || no.Kind != "RDS database" {
		t.Errorf("untagged database: %+v %v", db, err)
	}

	f = cloudfake.NewFakeAWS()
	f.AddGroup(n.DBSecurityGroup, map[string]string{"team": "db"})
	db, err = cloud.FindDatabase(f.Ctx(), f.Session(), n)
	if err != nil || db.ForeignDB || !errors.As(db.Foreign, &no) || no.Kind != "security group" || db.SG.ID != "" {
		t.Errorf("untagged group: %+v %v", db, err)
	}
}

func TestFindDatabaseFailures(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct{ op, want string }{
		{"DescribeDBInstances", "reading RDS database mlstack-demo"},
		{"DescribeDBSnapshots", "listing snapshots of RDS database mlstack-demo"},
		{"DescribeDBSubnetGroups", "reading DB subnet group mlstack-demo"},
		{"DescribeSecurityGroups", "reading security group mlstack-demo.db"},
		{"DescribeVpcs", "finding the default VPC"},
	} {
		f := cloudfake.NewFakeAWS()
		f.FailNext(c.op, cloudfake.AwsErr("Throttling"), 1)
		_, err := cloud.FindDatabase(f.Ctx(), f.Session(), n)
		if err == nil || !strings.Contains(err.Error(), c.want) || cloud.ErrorCode(err) != "Throttling" {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
}

func TestChooseDBClass(t *testing.T) {
	t.Parallel()
	f := cloudfake.NewFakeAWS()
	ctx := f.Ctx()
	rdsAPI := f.Session().RDS
	if c, err := cloud.ChooseDBClass(ctx, rdsAPI, "db.r6g.large", "eu-west-3"); err != nil || c != "db.r6g.large" || len(f.Calls()) != 0 {
		t.Errorf("explicit: %q %v, calls %v", c, err, f.Calls())
	}
	if c, err := cloud.ChooseDBClass(ctx, rdsAPI, "", "eu-west-3"); err != nil || c != "db.t4g.micro" {
		t.Errorf("default: %q %v", c, err)
	}
	f.RDSState.Model = awsmodel.RDS{Classes: []string{"db.t3.micro"}}
	if c, err := cloud.ChooseDBClass(ctx, rdsAPI, "", "eu-west-3"); err != nil || c != "db.t3.micro" {
		t.Errorf("no Graviton: %q %v", c, err)
	}
	f.RDSState.Model = awsmodel.RDS{Classes: []string{"db.m5.large"}}
	if _, err := cloud.ChooseDBClass(ctx, rdsAPI, "", "eu-west-3"); !cloud.IsUsage(err) || !strings.Contains(err.Error(), "pass --db-class") {
		t.Errorf("none offered: %v", err)
	}
	f.FailNext("DescribeOrderableDBInstanceOptions", cloudfake.AwsErr("Throttling"), 1)
	if _, err := cloud.ChooseDBClass(ctx, rdsAPI, "", "eu-west-3"); cloud.ErrorCode(err) != "Throttling" {
		t.Errorf("failing: %v", err)
	}
}

func TestRDSHelpers(t *testing.T) {
	t.Parallel()
	m := map[string]string{"b": "2", "a": "1"}
	tags := cloud.RDSTags(m)
	if len(tags) != 2 || *tags[0].Key != "a" || cloud.RDSTagMap(tags)["b"] != "2" {
		t.Errorf("tags %v", tags)
	}
	if _, err := cloud.EndpointOf(&rdstypes.DBInstance{DBInstanceIdentifier: aws.String("mlstack-demo")}); err == nil || !strings.Contains(err.Error(), "has no endpoint yet") {
		t.Errorf("endpoint of a creating database: %v", err)
	}
	if cloud.ClassOr("db.t3.micro") != "db.t3.micro" || cloud.ClassOr("") != "the class it had" {
		t.Error("classOr")
	}
	if cloud.Optional("") != nil || aws.ToString(cloud.Optional("x")) != "x" {
		t.Error("optional")
	}
}
