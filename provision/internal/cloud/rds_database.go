package cloud

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
	ParamDatabase   = "database"    // String, JSON dbEndpoint: written once RDS is available
	ParamDBPassword = "db-password" // SecureString: the master password
	DBName          = "mlflow"
	DBUser          = "mlflow"
	DBPort          = 5432
	// DBEngineVersion is a major version: RDS picks its default minor, and
	// MLflow's SQLAlchemy store works with every PostgreSQL RDS offers.
	DBEngineVersion = "17"
	DBStorageGiB    = 20
	// DBBackupDays keeps automated backups (point-in-time restore) for a
	// day: free-plan accounts refuse more.
	DBBackupDays = 1
	// DBWaitFor bounds waiting for RDS, which takes 5 to 15 minutes to
	// create or restore a database and as long to delete one.
	DBWaitFor = 40 * time.Minute
)

var dbClassRe = regexp.MustCompile(`^db\.[a-z0-9]+\.[a-z0-9]+$`)

// ValidateDatabase checks --db and --db-class, and that the stack's name
// makes an RDS identifier (no "--", no "-" at the end) when it needs one.
func ValidateDatabase(engine, class, stack string) error {
	switch engine {
	case "", DBSQLite, DBPostgres:
	default:
		return Usagef("--db %q: use sqlite (on the instance, the default) or postgres (Amazon RDS)", engine)
	}
	if class != "" && !dbClassRe.MatchString(class) {
		return Usagef("--db-class %q is not an RDS instance class (like db.t4g.micro)", class)
	}
	if class != "" && engine == DBSQLite {
		return Usagef("--db-class is for --db postgres: sqlite runs on the instance")
	}
	if engine == DBPostgres && (strings.Contains(stack, "--") || strings.HasSuffix(stack, "-")) {
		return Usagef("stack name %q cannot name an RDS database (no \"--\", no \"-\" at the end): choose another --stack", stack)
	}
	return nil
}

// dbClasses are the smallest burstable classes, the cheaper (Graviton) first.
var dbClasses = []string{"db.t4g.micro", "db.t3.micro"}

// RDSAPI is the part of RDS the database needs.
type RDSAPI interface {
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
	DescribeDBEngineVersions(context.Context, *rds.DescribeDBEngineVersionsInput, ...func(*rds.Options)) (*rds.DescribeDBEngineVersionsOutput, error)
	DescribeOrderableDBInstanceOptions(context.Context, *rds.DescribeOrderableDBInstanceOptionsInput, ...func(*rds.Options)) (*rds.DescribeOrderableDBInstanceOptionsOutput, error)
	AddTagsToResource(context.Context, *rds.AddTagsToResourceInput, ...func(*rds.Options)) (*rds.AddTagsToResourceOutput, error)
}

// DBEndpoint is the database parameter's value: where the server connects.
type DBEndpoint struct {
	Host string `json:"host"`
	Port int32  `json:"port"`
	Name string `json:"name"`
	User string `json:"user"`
}

// DBFound is what exists of the stack's database.
type DBFound struct {
	Inst        *rdstypes.DBInstance // nil when there is none
	SubnetGroup bool
	SG          *DBGroup
	Snapshots   []rdstypes.DBSnapshot // the stack's own, available, newest first
	Password    string                // the master password SSM holds ("" none); never printed
	Endpoint    string                // the database parameter's value
	Restored    string                // the snapshot this up restored, if any
	// Foreign: a same-named database or group without the stack's tag,
	// which only a postgres stack has to refuse; foreignDB: the database.
	Foreign     error
	ForeignDB   bool
	NetworkRead bool // subnetGroup and sg were read
}

// DBGroup is the database's security group, "" id when missing.
type DBGroup struct {
	VpcID, ID string
	Open      bool // lets the server's group in on tcp 5432
}

// Exists says the stack has a database or a kept snapshot of one.
func (f *DBFound) Exists() bool { return f != nil && (f.Inst != nil || len(f.Snapshots) > 0) }

// FindDatabase reads the stack's database, its network and kept snapshots
// (up adds its SSM parameters, which findParams reads). A same-named
// instance or group without the stack's tag is not the stack's: it goes to
// f.foreign.
func FindDatabase(ctx context.Context, s *Session, n Names) (*DBFound, error) {
	return FindDatabaseOf(ctx, s, n, true)
}

// FindDatabaseOf is findDatabase; without network, the subnet group and
// the database's security group are left for readNetwork (a sqlite stack's
// up needs neither).
func FindDatabaseOf(ctx context.Context, s *Session, n Names, network bool) (*DBFound, error) {
	f := &DBFound{SG: &DBGroup{}}
	var dbErr error
	err := Parallel(
		func() (err error) { f.Inst, dbErr = FindDBInstance(ctx, s.RDS, n); return nil },
		func() (err error) { f.Snapshots, err = StackSnapshots(ctx, s.RDS, n); return },
		func() error {
			if !network {
				return nil
			}
			return f.ReadNetwork(ctx, s, n)
		},
	)
	var no *NotOwnedError
	f.ForeignDB = errors.As(dbErr, &no)
	return f, errors.Join(err, f.keepForeign(dbErr))
}

// ReadNetwork reads the database's subnet group and security group into f.
func (f *DBFound) ReadNetwork(ctx context.Context, s *Session, n Names) error {
	var sgErr error
	err := Parallel(
		func() (err error) { f.SubnetGroup, err = HasSubnetGroup(ctx, s.RDS, n); return },
		func() (err error) {
			var g *DBGroup
			if g, sgErr = FindDBGroup(ctx, s.EC2, n); g != nil {
				f.SG = g
			}
			return nil
		},
	)
	f.NetworkRead = true
	return errors.Join(err, f.keepForeign(sgErr))
}

// keepForeign notes a not-owned error in f instead of failing.
func (f *DBFound) keepForeign(err error) error {
	var no *NotOwnedError
	if errors.As(err, &no) {
		f.Foreign = err
		return nil
	}
	return err
}

func FindDBInstance(ctx context.Context, api RDSAPI, n Names) (*rdstypes.DBInstance, error) {
	dbs, err := describeDBInstances(ctx, api, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(n.DB)})
	if HasCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading RDS database %s: %w", n.DB, err)
	}
	if len(dbs) == 0 {
		return nil, nil
	}
	db := dbs[0]
	if !owned(RDSTagMap(db.TagList), n.Stack) {
		return nil, &NotOwnedError{Kind: "RDS database", Name: n.DB, Stack: n.Stack}
	}
	return &db, nil
}

func HasSubnetGroup(ctx context.Context, api RDSAPI, n Names) (bool, error) {
	// By name: one group or DBSubnetGroupNotFoundFault; the first page says which.
	_, err := rds.NewDescribeDBSubnetGroupsPaginator(api, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(n.DBSubnetGroup)}).NextPage(ctx)
	if HasCode(err, "DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading DB subnet group %s: %w", n.DBSubnetGroup, err)
	}
	return true, nil
}

// FindDBGroup reads the database's group: its name in the default VPC.
func FindDBGroup(ctx context.Context, api SGAPI, n Names) (*DBGroup, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	g := &DBGroup{VpcID: vpc}
	sg, err := namedGroup(ctx, api, vpc, n.DBSecurityGroup)
	if err != nil || sg == nil {
		return g, err
	}
	if !owned(EC2TagMap(sg.Tags), n.Stack) {
		return nil, &NotOwnedError{Kind: "security group", Name: n.DBSecurityGroup + " (" + aws.ToString(sg.GroupId) + ")", Stack: n.Stack}
	}
	g.ID = aws.ToString(sg.GroupId)
	for _, p := range sg.IpPermissions {
		if aws.ToInt32(p.FromPort) == DBPort && len(p.UserIdGroupPairs) > 0 {
			g.Open = true
		}
	}
	return g, nil
}

// namedGroup is the security group of that name in the VPC, nil for none.
func namedGroup(ctx context.Context, api SGAPI, vpc, name string) (*ec2types.SecurityGroup, error) {
	groups, err := describeSecurityGroups(ctx, api, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{name}},
	}})
	if err != nil {
		return nil, fmt.Errorf("reading security group %s: %w", name, err)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	return &groups[0], nil
}

// StackSnapshots are the kept final snapshots of the stack's database:
// manual, named after it, tagged with the stack; newest first.
func StackSnapshots(ctx context.Context, api RDSAPI, n Names) ([]rdstypes.DBSnapshot, error) {
	var out []rdstypes.DBSnapshot
	p := rds.NewDescribeDBSnapshotsPaginator(api, &rds.DescribeDBSnapshotsInput{
		DBInstanceIdentifier: aws.String(n.DB), SnapshotType: aws.String("manual")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing snapshots of RDS database %s: %w", n.DB, err)
		}
		for _, s := range page.DBSnapshots {
			if strings.HasPrefix(aws.ToString(s.DBSnapshotIdentifier), n.DB+"-final-") && owned(RDSTagMap(s.TagList), n.Stack) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b rdstypes.DBSnapshot) int {
		return aws.ToTime(b.SnapshotCreateTime).Compare(aws.ToTime(a.SnapshotCreateTime))
	})
	return out, nil
}

// Restorable is the newest kept snapshot that is whole, "" for none.
func (f *DBFound) Restorable() string {
	for _, s := range f.Snapshots {
		if aws.ToString(s.Status) == "available" {
			return aws.ToString(s.DBSnapshotIdentifier)
		}
	}
	return ""
}

// ChooseDBClass is --db-class, else the first of dbClasses RDS offers for
// PostgreSQL in the region at the version CreateDBInstance makes (asked
// only for a database still to make): RDS offers classes per version.
func ChooseDBClass(ctx context.Context, api RDSAPI, explicit, region string) (string, error) {
	if explicit != "" {
		return explicit, nil // RDS refuses a class it does not offer, in its own words
	}
	version, err := defaultDBVersion(ctx, api, region)
	if err != nil {
		return "", err
	}
	for _, c := range dbClasses {
		// The filter matches full versions only: the default minor of DBEngineVersion.
		p := rds.NewDescribeOrderableDBInstanceOptionsPaginator(api, &rds.DescribeOrderableDBInstanceOptionsInput{
			Engine: aws.String("postgres"), EngineVersion: aws.String(version), DBInstanceClass: aws.String(c),
			Vpc: aws.Bool(true), MaxRecords: aws.Int32(20)})
		offered, err := offersAny(ctx, p)
		if err != nil {
			return "", fmt.Errorf("asking RDS whether it offers %s: %w", c, err)
		}
		if offered {
			return c, nil
		}
	}
	return "", Usagef("RDS offers none of %s for PostgreSQL %s in %s: pass --db-class with a class it offers there",
		strings.Join(dbClasses, ", "), version, region)
}

// defaultDBVersion is the full version CreateDBInstance makes when asked
// for DBEngineVersion (a major version): RDS's default minor of it.
func defaultDBVersion(ctx context.Context, api RDSAPI, region string) (string, error) {
	// Pages: an empty one can still carry a marker.
	p := rds.NewDescribeDBEngineVersionsPaginator(api, &rds.DescribeDBEngineVersionsInput{
		Engine: aws.String("postgres"), EngineVersion: aws.String(DBEngineVersion), DefaultOnly: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("asking RDS for its default PostgreSQL %s: %w", DBEngineVersion, err)
		}
		if len(out.DBEngineVersions) > 0 {
			return aws.ToString(out.DBEngineVersions[0].EngineVersion), nil
		}
	}
	return "", Usagef("RDS offers no PostgreSQL %s in %s: mlstack's database needs it", DBEngineVersion, region)
}

// Plan says in words what ensureDatabase would do.
func (f *DBFound) Plan(n Names, class string) []PlanStep {
	var p []PlanStep
	if f.Password == "" {
		p = append(p, Step(KindParam, n.Param(ParamDBPassword), "store %s as SSM SecureString %s", ParamDBPassword, n.Param(ParamDBPassword)))
	}
	if f.SG.ID == "" {
		p = append(p, Step(KindSG, n.DBSecurityGroup, "create security group %s letting security group %s reach tcp 5432", n.DBSecurityGroup, n.SecurityGroup))
	} else if !f.SG.Open {
		p = append(p, Step(KindSG, n.DBSecurityGroup, "let security group %s reach tcp 5432 through %s", n.SecurityGroup, n.DBSecurityGroup))
	}
	if !f.SubnetGroup {
		p = append(p, Step(KindDBSubnetGroup, n.DBSubnetGroup, "create DB subnet group %s over the default VPC's default subnets", n.DBSubnetGroup))
	}
	switch snap := f.Restorable(); {
	case f.Inst != nil:
	case snap != "":
		p = append(p, Step(KindDB, n.DB, "restore RDS database %s (%s) from its kept snapshot %s, and give it a new master password", n.DB, ClassOr(class), snap))
	default:
		p = append(p, Step(KindDB, n.DB, "create RDS database %s: PostgreSQL %s, %s, %d GiB encrypted, not public, automated backups kept %d day",
			n.DB, DBEngineVersion, class, DBStorageGiB, DBBackupDays))
	}
	if f.Endpoint == "" || f.Inst == nil {
		p = append(p, Step(KindParam, n.Param(ParamDatabase), "write SSM parameter %s once the database is available (the server waits for it)", n.Param(ParamDatabase)))
	}
	return p
}

func RDSTags(m map[string]string) []rdstypes.Tag {
	var out []rdstypes.Tag
	for _, k := range SortedKeys(m) {
		out = append(out, rdstypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func RDSTagMap(tags []rdstypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// EndpointOf is the database parameter's value for an available instance.
func EndpointOf(db *rdstypes.DBInstance) (string, error) {
	if db.Endpoint == nil || aws.ToString(db.Endpoint.Address) == "" {
		return "", fmt.Errorf("RDS database %s has no endpoint yet", aws.ToString(db.DBInstanceIdentifier))
	}
	b, err := json.Marshal(DBEndpoint{Host: aws.ToString(db.Endpoint.Address), Port: aws.ToInt32(db.Endpoint.Port), Name: DBName, User: DBUser})
	return string(b), err
}

// ClassOr names the class of a restore: the asked-for one, else the
// snapshot's (RDS's default).
func ClassOr(class string) string {
	if class == "" {
		return "the class it had"
	}
	return class
}

// Optional is nil for "" (the API's default).
func Optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
