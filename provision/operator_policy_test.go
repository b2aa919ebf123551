package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// The operator and sweeper policies are derived from the code, not kept by
// hand: every method of the narrow SDK interfaces (the only way mlstack
// reaches AWS) maps to the IAM actions AWS checks for it, and the
// operator policy must grant exactly those. A method added to an interface
// without its action, or an action left in the policy that no code needs,
// fails here.

// policyDoc is the part of an IAM policy document these tests read.
type policyDoc struct {
	Version   string
	Statement []policyStatement
}

type policyStatement struct {
	Sid       string
	Effect    string
	Action    stringList
	Resource  stringList
	Condition map[string]map[string]stringList
}

// stringList is an IAM policy element that may be one string or a list.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

func readPolicy(t *testing.T, name string) policyDoc {
	t.Helper()
	b, err := OperatorPolicy(name)
	if err != nil {
		t.Fatal(err)
	}
	var d policyDoc
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s policy: %v", name, err)
	}
	if d.Version != "2012-10-17" {
		t.Errorf("%s policy: Version %q, want 2012-10-17 (the one that knows policy variables)", name, d.Version)
	}
	return d
}

// actions is every action the document allows, whatever the resource.
func (d policyDoc) actions() []string {
	var out []string
	for _, s := range d.Statement {
		if s.Effect == "Allow" {
			out = append(out, s.Action...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// allows reports whether an Allow statement grants action on arn, matching
// wildcards as IAM does; conditions are not evaluated (resourceCases says
// which ones stand).
func (d policyDoc) allows(action, arn string) bool {
	for _, s := range d.Statement {
		if s.Effect == "Allow" && slices.ContainsFunc(s.Action, globMatch(action)) && slices.ContainsFunc(s.Resource, globMatch(arn)) {
			return true
		}
	}
	return false
}

// globMatch matches a policy pattern (* and ?) against s, case-sensitively
// as IAM matches resources.
func globMatch(s string) func(pattern string) bool {
	return func(pattern string) bool {
		re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
		return regexp.MustCompile(re).MatchString(s)
	}
}

// sdkServices are the narrow interfaces a command's session calls with the
// caller's credentials. (KeyProbeAPI signs with a stack's new key, not the
// caller's, and its one method is in S3API too.)
var sdkServices = []struct {
	service string
	api     reflect.Type
}{
	{"EC2", reflect.TypeFor[cloud.EC2API]()},
	{"IAM", reflect.TypeFor[cloud.IAMAPI]()},
	{"S3", reflect.TypeFor[cloud.S3API]()},
	{"SSM", reflect.TypeFor[cloud.SSMAPI]()},
	{"RDS", reflect.TypeFor[cloud.RDSAPI]()},
}

// sdkCalls is every "Service.Operation" mlstack can call as the operator:
// the methods of the narrow interfaces, and the identity check ConnectAWS
// makes with a client of its own (session.go).
func sdkCalls() []string {
	out := []string{"STS.GetCallerIdentity"}
	for _, s := range sdkServices {
		for i := range s.api.NumMethod() {
			out = append(out, s.service+"."+s.api.Method(i).Name)
		}
	}
	return out
}

// actionsOf are the IAM actions AWS checks for an operation whose action
// is not simply its own name, or that needs more than its own: from the
// Service Authorization Reference (SAR,
// https://docs.aws.amazon.com/service-authorization/latest/reference/) and
// S3's table of operations and permissions
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
var actionsOf = map[string][]string{
	// S3 names its permissions apart from its operations.
	"S3.HeadBucket":           {"s3:ListBucket"},
	"S3.ListObjectsV2":        {"s3:ListBucket"},
	"S3.ListObjectVersions":   {"s3:ListBucketVersions"},
	"S3.ListMultipartUploads": {"s3:ListBucketMultipartUploads"},
	"S3.ListBuckets":          {"s3:ListAllMyBuckets"},
	"S3.GetBucketEncryption":  {"s3:GetEncryptionConfiguration"},
	"S3.PutBucketEncryption":  {"s3:PutEncryptionConfiguration"},
	"S3.GetPublicAccessBlock": {"s3:GetBucketPublicAccessBlock"},
	"S3.PutPublicAccessBlock": {"s3:PutBucketPublicAccessBlock"},
	"S3.HeadObject":           {"s3:GetObject"},
	"S3.CopyObject":           {"s3:GetObject", "s3:PutObject"},
	// down deletes every version and delete marker.
	"S3.DeleteObjects": {"s3:DeleteObject", "s3:DeleteObjectVersion"},
	// CreateBucketConfiguration.Tags: s3:TagResource besides s3:CreateBucket (API_CreateBucket).
	"S3.CreateBucket": {"s3:CreateBucket", "s3:TagResource"},
	// Tags on create (TagSpecifications) need ec2:CreateTags with
	// ec2:CreateAction; RunInstances with an instance profile passes its
	// role (SAR: RunInstances, iam:PassRole).
	"EC2.RunInstances":        {"ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"},
	"EC2.CreateSecurityGroup": {"ec2:CreateSecurityGroup", "ec2:CreateTags"},
	"EC2.ImportKeyPair":       {"ec2:ImportKeyPair", "ec2:CreateTags"},
	// SAR: AddRoleToInstanceProfile's dependent action is iam:PassRole;
	// Create* with Tags need Tag* (dependent actions).
	"IAM.AddRoleToInstanceProfile": {"iam:AddRoleToInstanceProfile", "iam:PassRole"},
	"IAM.CreateUser":               {"iam:CreateUser", "iam:TagUser"},
	"IAM.CreateRole":               {"iam:CreateRole", "iam:TagRole"},
	"IAM.CreateInstanceProfile":    {"iam:CreateInstanceProfile", "iam:TagInstanceProfile"},
	"SSM.PutParameter":             {"ssm:PutParameter", "ssm:AddTagsToResource"},
	// RDS: tags on create need AddTagsToResource; the first database of an
	// account makes RDS's service-linked role; a final snapshot (down
	// --keep-data) is a snapshot made.
	"RDS.CreateDBInstance":                {"rds:CreateDBInstance", "rds:AddTagsToResource", "iam:CreateServiceLinkedRole"},
	"RDS.RestoreDBInstanceFromDBSnapshot": {"rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource", "iam:CreateServiceLinkedRole"},
	"RDS.CreateDBSubnetGroup":             {"rds:CreateDBSubnetGroup", "rds:AddTagsToResource"},
	"RDS.DeleteDBInstance":                {"rds:DeleteDBInstance", "rds:CreateDBSnapshot"},
}

// iamActions maps calls ("Service.Operation") to the actions they need.
func iamActions(calls []string) []string {
	var out []string
	for _, c := range calls {
		if a, ok := actionsOf[c]; ok {
			out = append(out, a...)
			continue
		}
		svc, op, _ := strings.Cut(c, ".")
		out = append(out, strings.ToLower(svc)+":"+op)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// diff is what want has that got lacks.
func diff(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	return out
}

func TestOperatorPolicyIsWhatTheCodeCalls(t *testing.T) {
	t.Parallel()
	for c := range actionsOf {
		if !slices.Contains(sdkCalls(), c) {
			t.Errorf("actionsOf names %s, which no interface has: drop it", c)
		}
	}
	want, got := iamActions(sdkCalls()), readPolicy(t, "operator").actions()
	if m := diff(want, got); len(m) > 0 {
		t.Errorf("the code calls what the operator policy does not grant: %v (templates/policies/operator.json)", m)
	}
	if m := diff(got, want); len(m) > 0 {
		t.Errorf("the operator policy grants what no code calls: %v (least privilege: drop them, or map the call in actionsOf)", m)
	}
}

// creating are the verbs a sweeper must never be granted: it deletes.
var creating = regexp.MustCompile(`:(Create|Run|Import|Put|Authorize|Tag|Add|Pass|Restore|Modify|Start|Reboot|Copy)`)

func TestSweeperPolicyOnlyDeletes(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	if _, err := pgUp(t, f, dir, func(o *UpOptions) { o.Stack.Name = "pg" }); err != nil {
		t.Fatal(err)
	}
	mustUp(t, f, func() UpOptions { o, _, _ := upOpts(dir, "plain"); return o }())
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	f.RetagAll("pg", cloud.TagExpiresAt, past)
	f.RetagAll("plain", cloud.TagExpiresAt, past)
	f.ResetCalls()
	o, _, log := sweepOpts(dir)
	o.Expired, o.Yes = true, true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("sweep: %v\n%s", err, log)
	}
	if !strings.Contains(log.String(), "mlstack-pg") || !strings.Contains(log.String(), "mlstack-plain") {
		t.Fatalf("the sweep did not delete both stacks:\n%s", log)
	}
	sweeper, operator := readPolicy(t, "sweeper").actions(), readPolicy(t, "operator").actions()
	// The identity check has a client of its own, which the fake does not
	// record; a sweep deletes databases without a final snapshot.
	called := diff(iamActions(append(f.Calls(), "STS.GetCallerIdentity")), []string{"rds:CreateDBSnapshot"})
	if m := diff(called, sweeper); len(m) > 0 {
		t.Errorf("down --expired calls what the sweeper policy does not grant: %v", m)
	}
	if m := diff(sweeper, operator); len(m) > 0 {
		t.Errorf("the sweeper policy grants what the operator's does not: %v", m)
	}
	for _, a := range sweeper {
		if creating.MatchString(a) {
			t.Errorf("the sweeper policy grants %s: a sweeper deletes, it never makes or changes", a)
		}
	}
	unused := diff(sweeper, called)
	sort.Strings(unused)
	if want := downWhenChanged; !slices.Equal(unused, want) {
		t.Errorf("sweeper actions this sweep did not need: %v, want exactly %v (those down needs only on a stack changed by hand)", unused, want)
	}
}

// downWhenChanged are what down needs only for a stack someone changed by
// hand (a user added to a group, a console password, a policy attached, a
// kept final snapshot): the sweeper policy has them, a plain sweep does not
// call them.
var downWhenChanged = []string{"iam:DeleteLoginProfile", "iam:DetachRolePolicy", "iam:DetachUserPolicy",
	"iam:RemoveUserFromGroup", "rds:DeleteDBSnapshot"}

// TestPolicyResources: the policies reach a stack's resources by the names
// mlstack gives them (names.go) and nothing named otherwise. Conditions
// (tags) are not evaluated here; docs/policy.md says where they stand.
func TestPolicyResources(t *testing.T) {
	t.Parallel()
	const account, region = "123456789012", "eu-west-3"
	n := cloud.NamesFor("demo", account, region)
	iamARN := func(kind, name string) string { return "arn:aws:iam::" + account + ":" + kind + cloud.IAMPath + name }
	ssmARN := func(name string) string { return "arn:aws:ssm:" + region + ":" + account + ":parameter" + name }
	rdsARN := func(kind, name string) string {
		return "arn:aws:rds:" + region + ":" + account + ":" + kind + ":" + name
	}
	ec2ARN := func(kind, id string) string { return "arn:aws:ec2:" + region + ":" + account + ":" + kind + "/" + id }
	cases := []struct {
		policy, action, arn string
		want                bool
	}{
		{"operator", "iam:CreateUser", iamARN("user", n.User), true},
		{"operator", "iam:CreateUser", "arn:aws:iam::" + account + ":user/admin", false},
		{"operator", "iam:CreateUser", "arn:aws:iam::" + account + ":user/mlstack-demo", false}, // not under /mlstack/
		{"operator", "iam:PutRolePolicy", iamARN("role", n.Role), true},
		{"operator", "iam:PutRolePolicy", iamARN("role", "mlstack-admin"), false},
		{"operator", "iam:PassRole", iamARN("role", n.Role), true},
		{"operator", "iam:PassRole", "arn:aws:iam::" + account + ":role/Admin", false},
		{"operator", "iam:AddRoleToInstanceProfile", iamARN("instance-profile", n.Profile), true},
		{"operator", "s3:CreateBucket", "arn:aws:s3:::" + n.Bucket, true},
		{"operator", "s3:CreateBucket", "arn:aws:s3:::" + n.GlobalBucket, true},
		{"operator", "s3:PutObject", "arn:aws:s3:::" + n.Bucket + "/backups/mlflow.db", true},
		{"operator", "s3:PutObject", "arn:aws:s3:::company-data/x", false},
		{"operator", "s3:DeleteBucket", "arn:aws:s3:::company-data", false},
		{"operator", "ssm:GetParameter", ssmARN(n.Param("admin-password")), true},
		{"operator", "ssm:GetParametersByPath", ssmARN(strings.TrimSuffix(n.ParamPath(), "/")), true},
		{"operator", "ssm:GetParameter", ssmARN("/prod/db-password"), false},
		{"operator", "rds:CreateDBInstance", rdsARN("db", n.DB), true},
		{"operator", "rds:DeleteDBInstance", rdsARN("db", "prod"), false},
		{"operator", "rds:CreateDBSubnetGroup", rdsARN("subgrp", n.DBSubnetGroup), true},
		{"operator", "rds:DeleteDBSnapshot", rdsARN("snapshot", n.DB+"-final-20260101-000000"), true},
		{"operator", "ec2:ImportKeyPair", ec2ARN("key-pair", n.KeyPair), true},
		{"operator", "ec2:DeleteKeyPair", ec2ARN("key-pair", "ops-laptop"), false},
		{"operator", "ec2:TerminateInstances", ec2ARN("instance", "i-0123456789abcdef0"), true}, // by its tag
		{"sweeper", "iam:DeleteUser", iamARN("user", n.User), true},
		{"sweeper", "iam:DeleteUser", "arn:aws:iam::" + account + ":user/admin", false},
		{"sweeper", "iam:CreateUser", iamARN("user", n.User), false},
		{"sweeper", "iam:PassRole", iamARN("role", n.Role), false},
		{"sweeper", "s3:DeleteBucket", "arn:aws:s3:::" + n.Bucket, true},
		{"sweeper", "s3:PutObject", "arn:aws:s3:::" + n.Bucket + "/x", false},
		{"sweeper", "ssm:DeleteParameters", ssmARN(n.Param("admin-password")), true},
		{"sweeper", "ssm:GetParameter", ssmARN(n.Param("admin-password")), false}, // no secrets
		{"sweeper", "ec2:RunInstances", ec2ARN("instance", "*"), false},
		{"sweeper", "rds:DeleteDBInstance", rdsARN("db", n.DB), true},
	}
	docs := map[string]policyDoc{"operator": readPolicy(t, "operator"), "sweeper": readPolicy(t, "sweeper")}
	// EC2 ids say nothing of whose a resource is: any EC2 statement that
	// can touch every instance or group must ask for the stack tag.
	for name, d := range docs {
		for _, st := range d.Statement {
			wide := slices.ContainsFunc(st.Resource, func(r string) bool {
				return strings.HasSuffix(r, ":instance/*") || strings.HasSuffix(r, ":security-group/*")
			})
			if wide && st.Condition == nil {
				t.Errorf("%s policy, statement %s: EC2 instances or groups without a tag condition", name, st.Sid)
			}
		}
	}
	for _, c := range cases {
		if got := docs[c.policy].allows(c.action, c.arn); got != c.want {
			t.Errorf("%s policy allows %s on %s: %v, want %v", c.policy, c.action, c.arn, got, c.want)
		}
	}
}

func TestDeniedHint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		hint bool
	}{
		{cloudfake.AwsErr("AccessDenied"), true},
		{fmt.Errorf("creating IAM user: %w", cloudfake.AwsErr("AccessDenied")), true},
		{cloudfake.AwsErr("UnauthorizedOperation"), true}, // EC2's word for it
		{cloudfake.AwsErr("AccessDeniedException"), true}, // SSM's
		{cloudfake.AwsErr("NoSuchEntity"), false},
		{errors.New("AccessDenied, said nobody"), false},
	}
	for _, c := range cases {
		got := DeniedHint(c.err)
		if (got != "") != c.hint || (c.hint && !strings.Contains(got, "`mlstack policy operator`")) {
			t.Errorf("DeniedHint(%v) = %q, want a hint: %v", c.err, got, c.hint)
		}
	}
}
