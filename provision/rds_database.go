package provision

// The stack's PostgreSQL database (up --db postgres): an RDS instance
// named like the stack, encrypted, private, in its own DB subnet group over
// the default VPC's default subnets, behind its own security group that
// lets in tcp 5432 from the server's group alone. The master password is an
// SSM SecureString mlstack writes (the role reads it at boot: never in
// user-data); where the database answers is a String parameter mlstack
// writes once RDS says it is available, which the server waits for.
//
// Why not an RDS-managed master secret: RDS rotates it every 7 days, while
// MLflow reads its database URI once at start; new connections would fail
// after a rotation until the server restarts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
)

// Database engines (up --db).
const (
	DBSQLite   = "sqlite"
	DBPostgres = "postgres"
)

// What mlstack makes of an RDS database.
const (
	paramDatabase   = "database"    // String, JSON dbEndpoint: written once RDS is available
	paramDBPassword = "db-password" // SecureString: the master password
	dbName          = "mlflow"
	dbUser          = "mlflow"
	dbPort          = 5432
	// dbEngineVersion is a major version: RDS picks its default minor, and
	// MLflow's SQLAlchemy store works with every PostgreSQL RDS offers.
	dbEngineVersion = "17"
	dbStorageGiB    = 20
	// dbBackupDays keeps automated backups (point-in-time restore) for a
	// day: free-plan accounts refuse more.
	dbBackupDays = 1
	// dbWaitFor bounds waiting for RDS, which takes 5 to 15 minutes to
	// create or restore a database and as long to delete one.
	dbWaitFor = 40 * time.Minute
)

var dbClassRe = regexp.MustCompile(`^db\.[a-z0-9]+\.[a-z0-9]+$`)

// validateDatabase checks --db and --db-class, and that the stack's name
// makes an RDS identifier (no "--", no "-" at the end) when it needs one.
func validateDatabase(engine, class, stack string) error {
	switch engine {
	case "", DBSQLite, DBPostgres:
	default:
		return usagef("--db %q: use sqlite (on the instance, the default) or postgres (Amazon RDS)", engine)
	}
	if class != "" && !dbClassRe.MatchString(class) {
		return usagef("--db-class %q is not an RDS instance class (like db.t4g.micro)", class)
	}
	if class != "" && engine == DBSQLite {
		return usagef("--db-class is for --db postgres: sqlite runs on the instance")
	}
	if engine == DBPostgres && (strings.Contains(stack, "--") || strings.HasSuffix(stack, "-")) {
		return usagef("stack name %q cannot name an RDS database (no \"--\", no \"-\" at the end): choose another --stack", stack)
	}
	return nil
}

// dbClasses are the smallest burstable classes, the cheaper (Graviton) first.
var dbClasses = []string{"db.t4g.micro", "db.t3.micro"}

// rdsAPI is the part of RDS the database needs.
type rdsAPI interface {
	DescribeDBInstances(context.Context, *rds.DescribeDBInstancesInput, ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error)
	CreateDBInstance(context.Context, *rds.CreateDBInstanceInput, ...func(*rds.Options)) (*rds.CreateDBInstanceOutput, error)
	RestoreDBInstanceFromDBSnapshot(context.Context, *rds.RestoreDBInstanceFromDBSnapshotInput, ...func(*rds.Options)) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error)
	ModifyDBInstance(context.Context, *rds.ModifyDBInstanceInput, ...func(*rds.Options)) (*rds.ModifyDBInstanceOutput, error)
	DeleteDBInstance(context.Context, *rds.DeleteDBInstanceInput, ...func(*rds.Options)) (*rds.DeleteDBInstanceOutput, error)
	DescribeDBSubnetGroups(context.Context, *rds.DescribeDBSubnetGroupsInput, ...func(*rds.Options)) (*rds.DescribeDBSubnetGroupsOutput, error)
	CreateDBSubnetGroup(context.Context, *rds.CreateDBSubnetGroupInput, ...func(*rds.Options)) (*rds.CreateDBSubnetGroupOutput, error)
	DeleteDBSubnetGroup(context.Context, *rds.DeleteDBSubnetGroupInput, ...func(*rds.Options)) (*rds.DeleteDBSubnetGroupOutput, error)
	DescribeDBSnapshots(context.Context, *rds.DescribeDBSnapshotsInput, ...func(*rds.Options)) (*rds.DescribeDBSnapshotsOutput, error)
	DeleteDBSnapshot(context.Context, *rds.DeleteDBSnapshotInput, ...func(*rds.Options)) (*rds.DeleteDBSnapshotOutput, error)
	DescribeOrderableDBInstanceOptions(context.Context, *rds.DescribeOrderableDBInstanceOptionsInput, ...func(*rds.Options)) (*rds.DescribeOrderableDBInstanceOptionsOutput, error)
	AddTagsToResource(context.Context, *rds.AddTagsToResourceInput, ...func(*rds.Options)) (*rds.AddTagsToResourceOutput, error)
}

// dbEndpoint is the database parameter's value: where the server connects.
type dbEndpoint struct {
	Host string `json:"host"`
	Port int32  `json:"port"`
	Name string `json:"name"`
	User string `json:"user"`
}

// dbFound is what exists of the stack's database.
type dbFound struct {
	inst        *rdstypes.DBInstance // nil when there is none
	subnetGroup bool
	sg          *dbGroup
	snapshots   []rdstypes.DBSnapshot // the stack's own, available, newest first
	password    string                // the master password SSM holds ("" none); never printed
	endpoint    string                // the database parameter's value
	restored    string                // the snapshot this up restored, if any
	// foreign: a same-named database or group without the stack's tag,
	// which only a postgres stack has to refuse; foreignDB: the database.
	foreign     error
	foreignDB   bool
	networkRead bool // subnetGroup and sg were read
}

// dbGroup is the database's security group, "" id when missing.
type dbGroup struct {
	vpcID, id string
	open      bool // lets the server's group in on tcp 5432
}

// exists says the stack has a database or a kept snapshot of one.
func (f *dbFound) exists() bool { return f != nil && (f.inst != nil || len(f.snapshots) > 0) }

// findDatabase reads the stack's database, its network and kept snapshots
// (up adds its SSM parameters, which findParams reads). A same-named
// instance or group without the stack's tag is not the stack's: it goes to
// f.foreign.
func findDatabase(ctx context.Context, s *session, n names) (*dbFound, error) {
	return findDatabaseOf(ctx, s, n, true)
}

// findDatabaseOf is findDatabase; without network, the subnet group and
// the database's security group are left for readNetwork (a sqlite stack's
// up needs neither).
func findDatabaseOf(ctx context.Context, s *session, n names, network bool) (*dbFound, error) {
	f := &dbFound{sg: &dbGroup{}}
	var dbErr error
	err := parallel(
		func() (err error) { f.inst, dbErr = findDBInstance(ctx, s.rds, n); return nil },
		func() (err error) { f.snapshots, err = stackSnapshots(ctx, s.rds, n); return },
		func() error {
			if !network {
				return nil
			}
			return f.readNetwork(ctx, s, n)
		},
	)
	var no *notOwnedError
	f.foreignDB = errors.As(dbErr, &no)
	return f, errors.Join(err, f.keepForeign(dbErr))
}

// readNetwork reads the database's subnet group and security group into f.
func (f *dbFound) readNetwork(ctx context.Context, s *session, n names) error {
	var sgErr error
	err := parallel(
		func() (err error) { f.subnetGroup, err = hasSubnetGroup(ctx, s.rds, n); return },
		func() (err error) {
			var g *dbGroup
			if g, sgErr = findDBGroup(ctx, s.ec2, n); g != nil {
				f.sg = g
			}
			return nil
		},
	)
	f.networkRead = true
	return errors.Join(err, f.keepForeign(sgErr))
}

// keepForeign notes a not-owned error in f instead of failing.
func (f *dbFound) keepForeign(err error) error {
	var no *notOwnedError
	if errors.As(err, &no) {
		f.foreign = err
		return nil
	}
	return err
}

func findDBInstance(ctx context.Context, api rdsAPI, n names) (*rdstypes.DBInstance, error) {
	out, err := api.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(n.DB)})
	if hasCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading RDS database %s: %w", n.DB, err)
	}
	if len(out.DBInstances) == 0 {
		return nil, nil
	}
	db := out.DBInstances[0]
	if !owned(rdsTagMap(db.TagList), n.Stack) {
		return nil, &notOwnedError{Kind: "RDS database", Name: n.DB, Stack: n.Stack}
	}
	return &db, nil
}

func hasSubnetGroup(ctx context.Context, api rdsAPI, n names) (bool, error) {
	_, err := api.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(n.DBSubnetGroup)})
	if hasCode(err, "DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading DB subnet group %s: %w", n.DBSubnetGroup, err)
	}
	return true, nil
}

// findDBGroup reads the database's group: its name in the default VPC.
func findDBGroup(ctx context.Context, api sgAPI, n names) (*dbGroup, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	g := &dbGroup{vpcID: vpc}
	sg, err := namedGroup(ctx, api, vpc, n.DBSecurityGroup)
	if err != nil || sg == nil {
		return g, err
	}
	if !owned(ec2TagMap(sg.Tags), n.Stack) {
		return nil, &notOwnedError{Kind: "security group", Name: n.DBSecurityGroup + " (" + aws.ToString(sg.GroupId) + ")", Stack: n.Stack}
	}
	g.id = aws.ToString(sg.GroupId)
	for _, p := range sg.IpPermissions {
		if aws.ToInt32(p.FromPort) == dbPort && len(p.UserIdGroupPairs) > 0 {
			g.open = true
		}
	}
	return g, nil
}

// namedGroup is the security group of that name in the VPC, nil for none.
func namedGroup(ctx context.Context, api sgAPI, vpc, name string) (*ec2types.SecurityGroup, error) {
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{name}},
	}})
	if err != nil {
		return nil, fmt.Errorf("reading security group %s: %w", name, err)
	}
	if len(out.SecurityGroups) == 0 {
		return nil, nil
	}
	return &out.SecurityGroups[0], nil
}

// stackSnapshots are the kept final snapshots of the stack's database:
// manual, named after it, tagged with the stack; newest first.
func stackSnapshots(ctx context.Context, api rdsAPI, n names) ([]rdstypes.DBSnapshot, error) {
	var out []rdstypes.DBSnapshot
	p := rds.NewDescribeDBSnapshotsPaginator(api, &rds.DescribeDBSnapshotsInput{
		DBInstanceIdentifier: aws.String(n.DB), SnapshotType: aws.String("manual")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing snapshots of RDS database %s: %w", n.DB, err)
		}
		for _, s := range page.DBSnapshots {
			if strings.HasPrefix(aws.ToString(s.DBSnapshotIdentifier), n.DB+"-final-") && owned(rdsTagMap(s.TagList), n.Stack) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b rdstypes.DBSnapshot) int {
		return aws.ToTime(b.SnapshotCreateTime).Compare(aws.ToTime(a.SnapshotCreateTime))
	})
	return out, nil
}

// restorable is the newest kept snapshot that is whole, "" for none.
func (f *dbFound) restorable() string {
	for _, s := range f.snapshots {
		if aws.ToString(s.Status) == "available" {
			return aws.ToString(s.DBSnapshotIdentifier)
		}
	}
	return ""
}

// chooseDBClass is --db-class, else the first of dbClasses RDS offers for
// PostgreSQL in the region (asked only for a database still to make).
func chooseDBClass(ctx context.Context, api rdsAPI, explicit, region string) (string, error) {
	if explicit != "" {
		return explicit, nil // RDS refuses a class it does not offer, in its own words
	}
	for _, c := range dbClasses {
		out, err := api.DescribeOrderableDBInstanceOptions(ctx, &rds.DescribeOrderableDBInstanceOptionsInput{
			Engine: aws.String("postgres"), DBInstanceClass: aws.String(c), Vpc: aws.Bool(true), MaxRecords: aws.Int32(20)})
		if err != nil {
			return "", fmt.Errorf("asking RDS whether it offers %s: %w", c, err)
		}
		if len(out.OrderableDBInstanceOptions) > 0 {
			return c, nil
		}
	}
	return "", usagef("RDS offers none of %s for PostgreSQL in %s: pass --db-class with a class it offers there",
		strings.Join(dbClasses, ", "), region)
}

// plan says in words what ensureDatabase would do.
func (f *dbFound) plan(n names, class string) []planStep {
	var p []planStep
	if f.password == "" {
		p = append(p, step(kindParam, n.param(paramDBPassword), "store %s as SSM SecureString %s", paramDBPassword, n.param(paramDBPassword)))
	}
	if f.sg.id == "" {
		p = append(p, step(kindSG, n.DBSecurityGroup, "create security group %s letting security group %s reach tcp 5432", n.DBSecurityGroup, n.SecurityGroup))
	} else if !f.sg.open {
		p = append(p, step(kindSG, n.DBSecurityGroup, "let security group %s reach tcp 5432 through %s", n.SecurityGroup, n.DBSecurityGroup))
	}
	if !f.subnetGroup {
		p = append(p, step(kindDBSubnetGroup, n.DBSubnetGroup, "create DB subnet group %s over the default VPC's default subnets", n.DBSubnetGroup))
	}
	switch snap := f.restorable(); {
	case f.inst != nil:
	case snap != "":
		p = append(p, step(kindDB, n.DB, "restore RDS database %s (%s) from its kept snapshot %s, and give it a new master password", n.DB, classOr(class), snap))
	default:
		p = append(p, step(kindDB, n.DB, "create RDS database %s: PostgreSQL %s, %s, %d GiB encrypted, not public, automated backups kept %d day",
			n.DB, dbEngineVersion, class, dbStorageGiB, dbBackupDays))
	}
	if f.endpoint == "" || f.inst == nil {
		p = append(p, step(kindParam, n.param(paramDatabase), "write SSM parameter %s once the database is available (the server waits for it)", n.param(paramDatabase)))
	}
	return p
}

func rdsTags(m map[string]string) []rdstypes.Tag {
	var out []rdstypes.Tag
	for _, k := range sortedKeys(m) {
		out = append(out, rdstypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func rdsTagMap(tags []rdstypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// endpointOf is the database parameter's value for an available instance.
func endpointOf(db *rdstypes.DBInstance) (string, error) {
	if db.Endpoint == nil || aws.ToString(db.Endpoint.Address) == "" {
		return "", fmt.Errorf("RDS database %s has no endpoint yet", aws.ToString(db.DBInstanceIdentifier))
	}
	b, err := json.Marshal(dbEndpoint{Host: aws.ToString(db.Endpoint.Address), Port: aws.ToInt32(db.Endpoint.Port), Name: dbName, User: dbUser})
	return string(b), err
}

// classOr names the class of a restore: the asked-for one, else the
// snapshot's (RDS's default).
func classOr(class string) string {
	if class == "" {
		return "the class it had"
	}
	return class
}

// optional is nil for "" (the API's default).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
