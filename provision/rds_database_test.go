package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// pgUp is up --db postgres over the fake that waits (for the database and
// a health server that answers 200), and its progress.
func pgUp(t *testing.T, f *cloudfake.FakeAWS, dir string, extra func(*UpOptions)) (log string, err error) {
	t.Helper()
	o, _, progress := upOpts(dir, "demo")
	o.Database, o.NoWait, o.hooks.HealthURL = cloud.DBPostgres, false, healthServer(t, http.StatusOK)
	if extra != nil {
		extra(&o)
	}
	err = Up(f.Ctx(), o)
	return progress.String(), err
}

func TestUpPostgresMakesThePrivateDatabase(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.RDSState.Model.Slow = 3
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	dir := t.TempDir()
	log, err := pgUp(t, f, dir, nil)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	d := f.DB(n.DB)
	if d == nil {
		t.Fatal("no database")
	}
	if got := aws.ToString(d.DB.DBInstanceClass); got != "db.t4g.micro" {
		t.Errorf("class %s, want the smallest burstable db.t4g.micro", got)
	}
	pw := f.ParamValue(n.Param(cloud.ParamDBPassword))
	if len(pw) < 32 || d.Password != pw {
		t.Errorf("the database's master password is not the SSM one (%d characters)", len(pw))
	}
	if strings.Contains(log, pw) {
		t.Error("the master password is in up's output")
	}
	var ep cloud.DBEndpoint
	if err := json.Unmarshal([]byte(f.ParamValue(n.Param(cloud.ParamDatabase))), &ep); err != nil || ep.Host == "" || ep.Port != 5432 || ep.User != cloud.DBUser {
		t.Errorf("database parameter %+v (%v)", ep, err)
	}
	if !strings.Contains(log, "RDS database mlstack-demo: creating") {
		t.Errorf("up did not say the database's state:\n%s", log)
	}
	// The database group lets the server's group in on 5432, nothing else.
	g := f.GroupNamed(n.DBSecurityGroup)
	if g == nil || len(g.IpPermissions) != 1 || aws.ToInt32(g.IpPermissions[0].FromPort) != 5432 ||
		len(g.IpPermissions[0].IpRanges) != 0 || len(g.IpPermissions[0].UserIdGroupPairs) != 1 ||
		aws.ToString(g.IpPermissions[0].UserIdGroupPairs[0].GroupId) != aws.ToString(f.GroupNamed(n.SecurityGroup).GroupId) {
		t.Errorf("database group %+v", g)
	}
	// RDS works while the instance boots; the server hears where the
	// database is only once it is available.
	calls := f.Calls()
	if i, j := slices.Index(calls, "RDS.CreateDBInstance"), slices.Index(calls, "EC2.RunInstances"); i < 0 || j < i {
		t.Errorf("CreateDBInstance at %d, RunInstances at %d", i, j)
	}
	o, out := statusOpts("demo", "")
	o.StateDir = dir
	if err := Status(f.Ctx(), o); err != nil || !strings.Contains(out.String(), "about $27.38 a month") ||
		!strings.Contains(out.String(), "database:       PostgreSQL 17.6 on RDS database mlstack-demo (db.t4g.micro, available)") {
		t.Errorf("status (%v):\n%s", err, out)
	}
	if !strings.Contains(cloud.RolePolicy("aws", cloudfake.FakeAccount, n), n.Param(cloud.ParamDatabase)) {
		t.Error("the role may not read the database parameter")
	}
}

func TestUpPostgresClass(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		offered   []string
		byVersion map[string][]string // classes RDS offers per full version
		explicit  string
		want      string // "" : refused before anything is made
	}{
		{offered: []string{"db.t3.micro"}, want: "db.t3.micro"},
		{offered: []string{"db.m5.large"}},
		{offered: []string{"db.t3.micro", "db.t4g.small"}, explicit: "db.t4g.small", want: "db.t4g.small"},
		// db.t4g.micro is offered, but not for the version up makes (17 is 17.6):
		// asked without the version, RDS would say yes and CreateDBInstance no.
		{byVersion: map[string][]string{"16.8": {"db.t4g.micro"}, "17.6": {"db.t3.micro"}}, want: "db.t3.micro"},
	} {
		t.Run(strings.Join(c.offered, ",")+c.explicit+fmt.Sprint(len(c.byVersion)), func(t *testing.T) {
			f := newInstalledFake(t)
			f.RDSState.Model.Classes, f.RDSState.Model.ClassesOf = c.offered, c.byVersion
			log, err := pgUp(t, f, t.TempDir(), func(o *UpOptions) { o.DBClass = c.explicit })
			if c.want == "" {
				if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "--db-class") {
					t.Fatalf("up = %v, want a usage error naming --db-class", err)
				}
				if m := f.Mutating(); len(m) > 0 {
					t.Errorf("refused up changed %v", m)
				}
				return
			}
			if err != nil {
				t.Fatalf("up: %v\n%s", err, log)
			}
			if got := aws.ToString(f.DB("mlstack-demo").DB.DBInstanceClass); got != c.want {
				t.Errorf("class %s, want %s", got, c.want)
			}
		})
	}
}

func TestUpRefusesEngineSwitch(t *testing.T) {
	t.Parallel()
	t.Run("sqlite to postgres", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		_, err := pgUp(t, f, dir, nil)
		if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "keeps its tracking data in sqlite on its server") {
			t.Fatalf("up = %v", err)
		}
		if m := f.Mutating(); len(m) > 0 {
			t.Errorf("refused up changed %v", m)
		}
	})
	t.Run("postgres to sqlite", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := t.TempDir()
		if log, err := pgUp(t, f, dir, nil); err != nil {
			t.Fatalf("up: %v\n%s", err, log)
		}
		f.ResetCalls()
		_, err := pgUp(t, f, dir, func(o *UpOptions) { o.Database = cloud.DBSQLite })
		if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "RDS database mlstack-demo") || strings.Contains(err.Error(), "--db sqlite") {
			t.Fatalf("up = %v (its hint must not repeat the refused --db sqlite)", err)
		}
		if m := f.Mutating(); len(m) > 0 {
			t.Errorf("refused up changed %v", m)
		}
		// Without --db it stays on PostgreSQL, and converges nothing new.
		f.ResetCalls()
		if log, err := pgUp(t, f, dir, func(o *UpOptions) { o.Database = "" }); err != nil {
			t.Fatalf("up: %v\n%s", err, log)
		}
		if m := f.Mutating(); len(m) > 0 {
			t.Errorf("up of a complete postgres stack changed %v", m)
		}
	})
}

func TestDownPostgres(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	if log, err := pgUp(t, f, dir, nil); err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	// keep-data: a final snapshot stays with the bucket.
	o, _, log := downOpts(dir, "demo")
	o.Yes, o.KeepData = true, true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("down --keep-data: %v\n%s", err, log)
	}
	if f.DB(n.DB) != nil || len(f.RDSState.Subnets) != 0 || f.GroupNamed(n.DBSecurityGroup) != nil {
		t.Fatal("down --keep-data left the database or its network")
	}
	if len(f.RDSState.Snapshots) != 1 || !strings.Contains(log.String(), "final snapshot") {
		t.Fatalf("snapshots %v\n%s", f.RDSState.Snapshots, log)
	}
	// A later up restores it and gives it the stack's new password.
	uplog, err := pgUp(t, f, dir, func(o *UpOptions) { o.Database = "" })
	if err != nil {
		t.Fatalf("up of the kept stack: %v\n%s", err, uplog)
	}
	d := f.DB(n.DB)
	if d == nil || d.Snapshot == "" || d.Password != f.ParamValue(n.Param(cloud.ParamDBPassword)) {
		t.Fatalf("restored database: %v (the restored one must have the SSM password)", d != nil && d.Snapshot != "")
	}
	// Plain down, from a machine without the stack's state, leaves
	// nothing, the kept snapshot neither.
	o, _, log = downOpts(t.TempDir(), "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("down: %v\n%s", err, log)
	}
	if f.DB(n.DB) != nil || len(f.RDSState.Snapshots) != 0 || len(f.RDSState.Subnets) != 0 || f.GroupNamed(n.DBSecurityGroup) != nil {
		t.Fatalf("down left RDS resources: snapshots %v subnets %v", f.RDSState.Snapshots, f.RDSState.Subnets)
	}
}

func TestUpPostgresDryRun(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	o, out, _ := upOpts(t.TempDir(), "demo")
	o.Database, o.DryRun = cloud.DBPostgres, true
	if err := Up(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"create RDS database mlstack-demo: PostgreSQL 17, db.t4g.micro, 20 GiB encrypted, not public",
		"create DB subnet group mlstack-demo", "create security group mlstack-demo.db letting security group mlstack-demo reach tcp 5432",
		"store db-password as SSM SecureString"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if m := f.Mutating(); len(m) > 0 {
		t.Errorf("dry run changed %v", m)
	}
}

// TestReplacePostgres: a postgres stack's instance is replaced without a
// backup to restore (the data stays in RDS), and the database is untouched.
func TestReplacePostgres(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	if log, err := pgUp(t, f, dir, nil); err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	o := replaceOpts(t, dir, http.StatusOK)
	o.DryRun = true
	var out strings.Builder
	o.Out = &out
	mustUp(t, f, o)
	if !strings.Contains(out.String(), "launch a new one whose server uses RDS database mlstack-demo, where the data stays") ||
		strings.Contains(out.String(), "restores the backup") {
		t.Errorf("dry run:\n%s", out.String())
	}
	o = replaceOpts(t, dir, http.StatusOK)
	o.Yes = true
	f.ResetCalls()
	mustUp(t, f, o)
	for _, c := range f.Mutating() {
		if strings.HasPrefix(c, "RDS.") {
			t.Errorf("the replacement changed the database: %s", c)
		}
	}
	if len(f.LiveInstances()) != 1 || f.DB("mlstack-demo") == nil {
		t.Errorf("after the replacement: instances %v", f.LiveInstances())
	}
}

// TestDatabaseGroupMadeMeanwhile: CreateSecurityGroup of the database's
// group answers InvalidGroup.Duplicate (an answer lost, the SDK's second
// try): up adopts the group it made, which carries the stack's tag.
func TestDatabaseGroupMadeMeanwhile(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.FailIf("CreateSecurityGroup", cloudfake.AwsErr("InvalidGroup.Duplicate"), 1, true, func(in any) bool {
		return aws.ToString(in.(*ec2.CreateSecurityGroupInput).GroupName) == "mlstack-demo.db"
	})
	if log, err := pgUp(t, f, t.TempDir(), nil); err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	if g := f.GroupNamed("mlstack-demo.db"); g == nil || len(g.IpPermissions) != 1 {
		t.Errorf("database group %+v", g)
	}
}

// TestForeignDatabase: an RDS database of the stack's name without the
// stack's tag is not the stack's: up refuses before changing anything, and
// down leaves it alone, saying so.
func TestForeignDatabase(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.RDSState.Init()
	f.NewDB("mlstack-demo", "db.t3.micro", nil, "theirs")
	dir := t.TempDir()
	_, err := pgUp(t, f, dir, nil)
	var no *cloud.NotOwnedError
	if !errors.As(err, &no) || len(f.Mutating()) != 0 {
		t.Fatalf("up next to a foreign database: %v, mutating %v", err, f.Mutating())
	}
	mustUp(t, f, func() UpOptions { o, _, _ := upOpts(dir, "demo"); return o }())
	o, _, log := downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("down: %v\n%s", err, log)
	}
	if f.DB("mlstack-demo") == nil || !strings.Contains(log.String(), "leaving RDS database mlstack-demo alone") {
		t.Errorf("down and the foreign database:\n%s", log)
	}
}

// TestSecurityGroupTexts: every text mlstack sends about its security
// groups, word for word: EC2 refuses, in a VPC, any character outside
// a-z A-Z 0-9 spaces ._-:/()#,@[]+=&;{}!$* (an apostrophe once broke every
// up --db postgres), and cloud.SGText would quietly change such a one.
func TestSecurityGroupTexts(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	if log, err := pgUp(t, f, t.TempDir(), nil); err != nil {
		t.Fatalf("up: %v\n%s", err, log)
	}
	var got []string
	f.Mu.Lock()
	for _, g := range f.Groups {
		got = append(got, aws.ToString(g.SG.GroupName)+": "+aws.ToString(g.SG.Description))
		for _, p := range g.SG.IpPermissions {
			for _, r := range p.IpRanges {
				got = append(got, "  "+aws.ToString(r.Description))
			}
			for _, u := range p.UserIdGroupPairs {
				got = append(got, "  "+aws.ToString(u.Description))
			}
		}
	}
	f.Mu.Unlock()
	want := []string{"mlstack-demo: mlstack demo: MLflow tracking server", "  mlstack demo",
		"mlstack-demo.db: mlstack demo: PostgreSQL from the server group only", "  mlstack server"}
	if !slices.Equal(got, want) {
		t.Errorf("security group texts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, text := range got {
		if err := awsmodel.SecurityGroupText("GroupDescription", strings.TrimSpace(text)); err != nil {
			t.Error(err)
		}
	}
}
