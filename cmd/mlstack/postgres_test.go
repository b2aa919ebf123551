package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// TestPostgresStack: up --db postgres against moto, with RDS as slow as
// AWS (the stand-in shows creating, resetting and deleting states, and a
// subnet group in use while its database goes): bad input and a dry run
// change nothing; up makes an encrypted, private database only the
// server's group reaches, waits for it and tells the server where it is;
// the role reads the two parameters, the password shows nowhere; status and
// ls show it; an engine switch is refused; down --keep-data keeps a final
// snapshot and the bucket, up restores it with the stack's password, and a
// plain down from a fresh machine leaves nothing.
func TestPostgresStack(t *testing.T) {
	e := newEnv(t)
	const stack = "pg"
	flags := e.stackFlags(stack)
	up := func(extra ...string) result {
		return e.mlstack(append(append([]string{"up", "--allow-cidr", allowCIDR}, flags...), extra...)...)
	}
	for _, bad := range [][]string{{"--db", "mysql"}, {"--db", "postgres", "--db-class", "t3.micro"}, {"--db-class", "db.t3.micro", "--db", "sqlite"}} {
		if res := up(bad...); res.code != 2 || len(e.rec.mutating()) != 0 {
			t.Fatalf("up %v: exit %d, mutating %v\n%s", bad, res.code, e.rec.mutating(), res.stderr)
		}
	}
	dry := up("--db", "postgres", "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.stdout, "would create RDS database mlstack-pg: PostgreSQL 17, db.t4g.micro") || len(e.rec.mutating()) != 0 {
		t.Fatalf("dry run: exit %d, mutating %v\n%s", dry.code, e.rec.mutating(), dry.stdout)
	}

	e.publishAsServer(stack)
	res := up("--db", "postgres")
	if res.code != 0 {
		t.Fatalf("up --db postgres: exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"RDS database mlstack-pg: creating", "RDS database mlstack-pg is available", "telling the server where the database is"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("up does not say %q:\n%s", want, res.stderr)
		}
	}
	db := e.database("mlstack-pg")
	checkPrivateDatabase(t, e, db)
	password := checkDatabaseParams(t, e, stack, db)
	if strings.Contains(res.stdout+res.stderr+dry.stdout, password) {
		t.Error("the database password is in up's output")
	}

	doc := decodeStack(t, e.ok(append([]string{"status", "--output", "json"}, flags...)...).stdout)
	if doc.Database == nil || *doc.Database != "postgres" || !hasResourceIn(doc, "rds_database", "mlstack-pg", "available") ||
		!hasResourceIn(doc, "rds_subnet_group", "mlstack-pg", "exists") || !hasResourceIn(doc, "security_group", "mlstack-pg.db", "exists") {
		t.Errorf("status: database %v, resources %+v", doc.Database, doc.Resources)
	}
	if ls := e.ls(); len(ls) != 1 || ls[0].Database == nil || *ls[0].Database != "postgres" {
		t.Errorf("ls: %+v", ls)
	}
	e.rec.reset()
	e.ok(append([]string{"up", "--allow-cidr", allowCIDR}, flags...)...)
	if m := e.rec.mutating(); len(m) != 0 {
		t.Errorf("up of a complete postgres stack changed %v", m)
	}
	if res := up("--db", "sqlite"); res.code != 2 || !strings.Contains(res.stderr, "keeps its tracking data in RDS database mlstack-pg") || len(e.rec.mutating()) != 0 {
		t.Errorf("switch to sqlite: exit %d, mutating %v\n%s", res.code, e.rec.mutating(), res.stderr)
	}

	for _, cmd := range [][]string{{"backup"}, {"restore", "--from", "latest", "--yes"}} {
		if res := e.mlstack(append(cmd, flags...)...); res.code != 2 || !strings.Contains(res.stderr, "RDS backs it up every day") || len(e.rec.mutating()) != 0 {
			t.Errorf("%v on a postgres stack: exit %d, mutating %v\n%s", cmd, res.code, e.rec.mutating(), res.stderr)
		}
	}

	keepAndRestore(t, e, flags, password)

	e.ok("down", "--yes", "--stack", stack, "--state-dir", t.TempDir()) // a fresh machine
	e.assertNothingLeft()
	// What AWS does and moto does not was in the way each time.
	for _, what := range []string{"orderable classes", "database creating", "database resetting-master-credentials", "database deleting"} {
		if e.rec.aws.count(what) == 0 {
			t.Errorf("the stand-in never answered %q", what)
		}
	}
}

// keepAndRestore: down --keep-data, then up restores the final snapshot.
func keepAndRestore(t *testing.T, e *env, flags []string, oldPassword string) {
	t.Helper()
	bucket := "mlstack-pg-123456789012-eu-west-3-an"
	res := e.ok(append([]string{"down", "--keep-data", "--yes"}, flags...)...)
	snaps, err := e.rds.DescribeDBSnapshots(context.Background(), &rds.DescribeDBSnapshotsInput{SnapshotType: aws.String("manual")})
	must(t, err)
	if len(snaps.DBSnapshots) != 1 || !strings.Contains(res.stderr, "final snapshot "+aws.ToString(snaps.DBSnapshots[0].DBSnapshotIdentifier)) ||
		!strings.Contains(res.stderr, "and RDS snapshot "+aws.ToString(snaps.DBSnapshots[0].DBSnapshotIdentifier)+" of the database: `mlstack up") {
		t.Fatalf("down --keep-data: snapshots %+v\n%s", snaps.DBSnapshots, res.stderr)
	}
	snap := aws.ToString(snaps.DBSnapshots[0].DBSnapshotIdentifier)
	e.assertNothingLeft("bucket "+bucket, "rds-snapshot "+snap)

	e.publishAsServer("pg")
	res = e.ok(append([]string{"up", "--allow-cidr", allowCIDR}, flags...)...)
	for _, want := range []string{"restoring RDS database mlstack-pg (the class it had) from its kept snapshot " + snap,
		"setting the master password of RDS database mlstack-pg", "RDS database mlstack-pg: resetting-master-credentials"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("up of the kept stack does not say %q:\n%s", want, res.stderr)
		}
	}
	db := e.database("mlstack-pg")
	checkPrivateDatabase(t, e, db)
	if pw := checkDatabaseParams(t, e, "pg", db); pw == oldPassword || strings.Contains(res.stderr, pw) {
		t.Error("the restored database's password is the old one, or in up's output")
	}
}

func (e *env) database(id string) rdstypes.DBInstance {
	e.t.Helper()
	out, err := e.rds.DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	must(e.t, err)
	return out.DBInstances[0]
}

// checkPrivateDatabase: encrypted, not public, backed up, behind its own
// group, which lets in the server's group on 5432 and nothing else.
func checkPrivateDatabase(t *testing.T, e *env, db rdstypes.DBInstance) {
	t.Helper()
	if !aws.ToBool(db.StorageEncrypted) || aws.ToBool(db.PubliclyAccessible) || aws.ToInt32(db.BackupRetentionPeriod) < 1 ||
		aws.ToString(db.DBInstanceClass) != "db.t4g.micro" || len(db.VpcSecurityGroups) != 1 {
		t.Fatalf("database: encrypted %v, public %v, backups %v days, class %s, groups %d", aws.ToBool(db.StorageEncrypted),
			aws.ToBool(db.PubliclyAccessible), aws.ToInt32(db.BackupRetentionPeriod), aws.ToString(db.DBInstanceClass), len(db.VpcSecurityGroups))
	}
	out, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		GroupIds: []string{aws.ToString(db.VpcSecurityGroups[0].VpcSecurityGroupId)}})
	must(t, err)
	server, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{"mlstack-pg"}}}})
	must(t, err)
	perms := out.SecurityGroups[0].IpPermissions
	if len(perms) != 1 || aws.ToInt32(perms[0].FromPort) != 5432 || len(perms[0].IpRanges)+len(perms[0].Ipv6Ranges) != 0 ||
		len(perms[0].UserIdGroupPairs) != 1 || aws.ToString(perms[0].UserIdGroupPairs[0].GroupId) != aws.ToString(server.SecurityGroups[0].GroupId) {
		t.Errorf("the database's group lets in %+v", perms)
	}
}

// checkDatabaseParams: the role reads the password and where the
// database answers (the endpoint RDS gives); it returns the password.
func checkDatabaseParams(t *testing.T, e *env, stack string, db rdstypes.DBInstance) string {
	t.Helper()
	role := e.roleSSM(stack, "i-server")
	got := map[string]string{}
	for _, name := range []string{"db-password", "database"} {
		out, err := role.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/mlstack/" + stack + "/" + name), WithDecryption: aws.Bool(true)})
		if err != nil {
			t.Fatalf("the server role cannot read %s: %v", name, err)
		}
		got[name] = aws.ToString(out.Parameter.Value)
	}
	var ep struct {
		Host string `json:"host"`
		Port int    `json:"port"`
		Name string `json:"name"`
		User string `json:"user"`
	}
	if err := json.Unmarshal([]byte(got["database"]), &ep); err != nil || ep.Host != aws.ToString(db.Endpoint.Address) || ep.Port != 5432 ||
		ep.Name != "mlflow" || ep.User != "mlflow" {
		t.Errorf("database parameter %q (%v)", got["database"], err)
	}
	if len(got["db-password"]) < 32 {
		t.Errorf("a %d-character password", len(got["db-password"]))
	}
	return got["db-password"]
}

func hasResourceIn(doc stackDoc, kind, name, state string) bool {
	for _, r := range doc.Resources {
		if r.Kind == kind && r.Name == name && r.State == state {
			return true
		}
	}
	return false
}

// TestPostgresSweep: a postgres stack whose up did not wait, swept as
// expired while RDS still makes its database (RDS refuses to delete it
// until then): nothing is left.
func TestPostgresSweep(t *testing.T) {
	e := newEnv(t)
	// RDS takes minutes; the sweep comes at once (up and the sweep — its
	// listing, its read of the stack right before deleting, the delete —
	// describe the database several times before the sweep deletes it).
	e.rec.aws.set(func(a *awsLike) { a.rds.Slow = 6 })
	res := e.ok("up", "--no-wait", "--db", "postgres", "--ttl", "1s", "--allow-cidr", allowCIDR, "--stack", "pgsweep", "--state-dir", e.stateDir)
	if !strings.Contains(res.stderr, "the server starts once RDS database mlstack-pgsweep is available and `mlstack up") {
		t.Errorf("up --no-wait does not say what is left to do:\n%s", res.stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	res = e.ok("down", "--expired", "--yes", "--state-dir", e.stateDir)
	if e.rec.aws.count("database busy") == 0 {
		t.Errorf("the sweep met no database in the making:\n%s", res.stderr)
	}
	e.assertNothingLeft()
}

// TestInterruptPostgres: SIGINT at every third call of `up --db postgres`
// and of its down that has to do with the database (RDS, the database's security
// group, the SSM parameters): a new up finishes the job with exactly one
// database, and down leaves nothing.
func TestInterruptPostgres(t *testing.T) {
	bin := binary(t)
	e := newEnv(t)
	const stack = "sigpg"
	up := append([]string{"up", "--no-wait", "--db", "postgres", "--allow-cidr", allowCIDR}, e.stackFlags(stack)...)
	down := append([]string{"down", "--yes"}, e.stackFlags(stack)...)
	e.ok(up...)
	upAt := databaseCalls(e.rec.calls())
	e.rec.reset()
	e.ok(down...)
	downAt := databaseCalls(e.rec.calls())
	if len(upAt) < 5 || len(downAt) < 5 {
		t.Fatalf("database calls: up %v, down %v", upAt, downAt)
	}
	interrupted := 0
	for _, c := range []struct {
		args []string
		at   []int
	}{{up, upAt}, {down, downAt}} {
		for i, n := range c.at {
			if i%3 != 0 { // every third one: the test is long enough
				continue
			}
			if c.args[0] == "down" {
				e.ok(up...)
			}
			e.rec.reset()
			run := e.runInterrupted(bin, c.args, n, "interrupted "+c.args[0])
			switch run.code {
			case 130:
				interrupted++
			case 0:
			default:
				t.Errorf("%s interrupted at call %d: exit %d: %s", c.args[0], n, run.code, run.stderr)
			}
			if c.args[0] == "up" {
				e.ok(up...)
				if dbs := e.databases(); len(dbs) != 1 {
					t.Errorf("up interrupted at call %d, then up: databases %v", n, dbs)
				}
			}
			e.ok(down...)
			e.assertNothingLeft()
		}
	}
	if interrupted == 0 {
		t.Error("no run was actually interrupted")
	}
	t.Logf("interrupted %d runs at %d database calls of up and %d of down", interrupted, len(upAt), len(downAt))
}

// databaseCalls are the 1-based numbers of the calls that have to do with
// the database.
func databaseCalls(calls []apiCall) []int {
	var at []int
	for i, c := range calls {
		switch {
		case c.Service == "rds",
			c.Action == "CreateSecurityGroup", c.Action == "AuthorizeSecurityGroupIngress", c.Action == "DeleteSecurityGroup",
			c.Action == "PutParameter" || c.Action == "DeleteParameters":
			at = append(at, i+1)
		}
	}
	return at
}

func (e *env) databases() []string {
	e.t.Helper()
	out, err := e.rds.DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{})
	must(e.t, err)
	var ids []string
	for _, d := range out.DBInstances {
		ids = append(ids, aws.ToString(d.DBInstanceIdentifier))
	}
	return ids
}

// TestPostgresFaults: a postgres stack's whole life (up, up again, down)
// while AWS loses the answers of every call that makes or deletes part of
// the database once (the SDK sends it again and meets what the first one
// made or deleted), throttles and drops connections: one database, then
// nothing left.
func TestPostgresFaults(t *testing.T) {
	e := newEnv(t)
	f := newFaults(11)
	for _, action := range []string{"CreateDBSubnetGroup", "CreateDBInstance", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress",
		"PutParameter", "DeleteDBInstance", "DeleteDBSubnetGroup", "DeleteSecurityGroup"} {
		f.loseFirst(action, 1)
	}
	f.chances(0.1, 0.05, 0)
	e.rec.setFaults(f)
	up := append([]string{"up", "--no-wait", "--db", "postgres", "--allow-cidr", allowCIDR}, e.stackFlags("pgf")...)
	e.ok(up...)
	e.ok(up...)
	if dbs := e.databases(); len(dbs) != 1 {
		t.Errorf("databases %v, want one", dbs)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("pgf")...)...)
	e.rec.setFaults(nil)
	e.assertNothingLeft()
	t.Logf("injected: %s", f.report())
}
