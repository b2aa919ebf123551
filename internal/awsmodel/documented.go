package awsmodel

// The rules AWS documents that its service models do not carry (EC2's
// model has no character sets at all; S3's no bucket-name rule; RDS's no
// identifier rule), one table, each with the page that states it. They
// are checked after the model's rules, by the same CheckTree, on both
// tiers.

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode/utf8"
)

// DocRule is one documented rule on one member of some operations.
type DocRule struct {
	Name    string   // what it is, as the tests and the note name it
	Service string   // ec2, iam, rds, s3, ssm, sts
	Ops     []string // the operations it applies to
	Path    string   // the member path in the tree; "*" is every list item
	// Check returns "" when v is allowed, else what AWS says is wrong.
	Check     func(v string) string
	Code      string // AWS's error code; "" is the service's validation code
	Sensitive bool   // the value is a secret: never echoed
	Link      string
}

var (
	rdsInstance = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	rdsUser     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	rdsDBName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	subnetGroup = regexp.MustCompile(`^[A-Za-z0-9._ -]+$`)
	bucketChars = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`)
	ssmName     = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)
)

// allowed: v has at most max characters, all matching re.
func allowed(re *regexp.Regexp, max int, what string) func(string) string {
	return func(v string) string {
		if utf8.RuneCountInString(v) > max {
			return fmt.Sprintf("%s: at most %d characters", what, max)
		}
		if !re.MatchString(v) {
			return what
		}
		return ""
	}
}

const (
	linkSG      = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html"
	linkIPRange = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpRange.html"
	linkRDS     = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html"
	linkRDSTag  = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Tag.html"
	linkS3Tag   = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_Tag.html"
	linkSSMTag  = "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html"
	linkIAMTag  = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html#id_tags_rules_creating"
	linkBucket  = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"
	linkSSMName = "https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html"
	linkSSMSize = "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html"
	linkIAMSize = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html#reference_iam-quotas-entity-length"
	linkUser    = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html"
	linkKeyPair = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportKeyPair.html"
)

// onlyRunes: v has at most max characters, each one ok accepts (the
// character sets are texts.go's, shared with the tests that check
// mlstack's own texts).
func onlyRunes(ok func(rune) bool, max int, what string) func(string) string {
	return func(v string) string {
		if utf8.RuneCountInString(v) > max || strings.IndexFunc(v, func(r rune) bool { return !ok(r) }) >= 0 {
			return what
		}
		return ""
	}
}

var (
	sgText   = onlyRunes(SGTextAllowed, SGTextMax, "Valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$* (up to 255)")
	tagValue = onlyRunes(TagValueAllowed, TagValueMax, "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* (at most 256 characters)")
	tagKey   = func(v string) string {
		if strings.HasPrefix(strings.ToLower(v), "aws:") {
			return "Tag keys may not begin with aws:"
		}
		if v == "" {
			return "Member must have length greater than or equal to 1"
		}
		return onlyRunes(TagValueAllowed, 128, "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+ (at most 128 characters)")(v)
	}
)

// tagRules are the key and value rules of a service's tags at path.
func tagRules(svc, link, path string, ops ...string) []DocRule {
	code := ""
	if svc == "s3" {
		code = "InvalidTag" // S3's own answer: "The TagValue you have provided is invalid"
	}
	return []DocRule{
		{Name: svc + " tag value", Service: svc, Ops: ops, Path: path + ".*.Value", Check: tagValue, Code: code, Link: link},
		{Name: svc + " tag key", Service: svc, Ops: ops, Path: path + ".*.Key", Check: tagKey, Code: code, Link: link},
	}
}

// Documented is the table.
var Documented = func() []DocRule {
	t := []DocRule{
		{Name: "EC2 security group name", Service: "ec2", Ops: []string{"CreateSecurityGroup"}, Path: "GroupName", Link: linkSG,
			Check: func(v string) string {
				if strings.HasPrefix(strings.ToLower(v), "sg-") {
					return "Group names may not be in the format sg-*"
				}
				return sgText(v)
			}},
		{Name: "EC2 security group description", Service: "ec2", Ops: []string{"CreateSecurityGroup"}, Path: "Description", Check: sgText, Link: linkSG},
	}
	for _, kind := range []string{"IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"} {
		t = append(t, DocRule{Name: "EC2 rule description (" + kind + ")", Service: "ec2",
			Ops:  []string{"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"},
			Path: "IpPermissions.*." + kind + ".*.Description", Check: sgText, Link: linkIPRange})
	}
	t = append(t, tagRules("iam", linkIAMTag, "Tags", "CreateUser", "TagUser", "CreateRole", "TagRole", "CreateInstanceProfile", "TagInstanceProfile")...)
	t = append(t, tagRules("s3", linkS3Tag, "Tagging.TagSet", "PutBucketTagging")...)
	t = append(t, tagRules("s3", linkS3Tag, "CreateBucketConfiguration.Tags", "CreateBucket")...)
	t = append(t, tagRules("ssm", linkSSMTag, "Tags", "PutParameter", "AddTagsToResource")...)
	t = append(t, tagRules("rds", linkRDSTag, "Tags", "CreateDBInstance", "CreateDBSubnetGroup", "AddTagsToResource", "RestoreDBInstanceFromDBSnapshot")...)
	t = append(t, rdsRules()...)
	return append(t, []DocRule{
		{Name: "S3 bucket name", Service: "s3", Ops: []string{"CreateBucket"}, Path: "Bucket", Check: bucketName, Code: "InvalidBucketName", Link: linkBucket},
		{Name: "SSM parameter name", Service: "ssm", Ops: []string{"PutParameter", "GetParameter", "DeleteParameter"}, Path: "Name", Check: ssmParamName, Link: linkSSMName},
		{Name: "SSM parameter names", Service: "ssm", Ops: []string{"GetParameters", "DeleteParameters"}, Path: "Names.*", Check: ssmParamName, Link: linkSSMName},
		{Name: "SSM standard parameter value", Service: "ssm", Ops: []string{"PutParameter"}, Path: "Value", Sensitive: true, Link: linkSSMSize,
			Check: func(v string) string {
				if len(v) > 4096 {
					return "Standard tier parameters support a maximum parameter value of 4096 characters"
				}
				return ""
			}},
		{Name: "IAM inline user policy size", Service: "iam", Ops: []string{"PutUserPolicy"}, Path: "PolicyDocument", Code: "LimitExceeded", Link: linkIAMSize,
			Check: policySize(2048, "user")},
		{Name: "IAM inline role policy size", Service: "iam", Ops: []string{"PutRolePolicy"}, Path: "PolicyDocument", Code: "LimitExceeded", Link: linkIAMSize,
			Check: policySize(10240, "role")},
		{Name: "EC2 user data size", Service: "ec2", Ops: []string{"RunInstances"}, Path: "UserData", Link: linkUser,
			Check: func(v string) string {
				if len(v) > 16384*4/3+4 { // base64 of 16 KB
					return "User data is limited to 16384 bytes"
				}
				return ""
			}},
		{Name: "EC2 key pair name", Service: "ec2", Ops: []string{"ImportKeyPair"}, Path: "KeyName", Link: linkKeyPair,
			Check: func(v string) string {
				for _, r := range v {
					if r > 127 {
						return "Key pair names are up to 255 ASCII characters"
					}
				}
				if len(v) > 255 {
					return "Key pair names are up to 255 ASCII characters"
				}
				return ""
			}},
	}...)
}()

// rdsRules: identifiers, the master user name and password, the
// database name (PostgreSQL's limits, the engine mlstack runs).
func rdsRules() []DocRule {
	create := []string{"CreateDBInstance"}
	ident := func(max int) func(string) string {
		return func(v string) string {
			if len(v) > max || !rdsInstance.MatchString(v) || strings.HasSuffix(v, "-") || strings.Contains(v, "--") {
				return fmt.Sprintf("Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens (at most %d); and must not end with a hyphen or contain two consecutive hyphens", max)
			}
			return ""
		}
	}
	return []DocRule{
		{Name: "RDS instance identifier", Service: "rds", Ops: []string{"CreateDBInstance", "RestoreDBInstanceFromDBSnapshot"}, Path: "DBInstanceIdentifier", Check: ident(63), Link: linkRDS},
		{Name: "RDS snapshot identifier", Service: "rds", Ops: []string{"DeleteDBInstance"}, Path: "FinalDBSnapshotIdentifier", Check: ident(255), Link: "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html"},
		{Name: "RDS subnet group name", Service: "rds", Ops: []string{"CreateDBSubnetGroup"}, Path: "DBSubnetGroupName", Link: "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBSubnetGroup.html",
			Check: func(v string) string {
				if strings.EqualFold(v, "default") {
					return "Must not be default"
				}
				return allowed(subnetGroup, 255, "Must contain no more than 255 letters, numbers, periods, underscores, spaces, or hyphens")(v)
			}},
		{Name: "RDS master user name", Service: "rds", Ops: create, Path: "MasterUsername", Check: func(v string) string {
			if strings.EqualFold(v, "rdsadmin") {
				return "MasterUsername rdsadmin is reserved for the engine"
			}
			return allowed(rdsUser, 63, "MasterUsername must begin with a letter and contain 1 to 63 letters, digits or underscores")(v)
		}, Link: linkRDS},
		{Name: "RDS master password", Service: "rds", Ops: []string{"CreateDBInstance", "ModifyDBInstance"}, Path: "MasterUserPassword", Sensitive: true, Check: rdsPassword, Link: linkRDS},
		{Name: "RDS database name", Service: "rds", Ops: create, Path: "DBName", Check: allowed(rdsDBName, 63, "DBName must begin with a letter or an underscore and contain 1 to 63 letters, digits or underscores"), Link: linkRDS},
	}
}

// rdsPassword: 8 to 128 printable ASCII characters but / ' " @ and space.
func rdsPassword(v string) string {
	const rule = "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides '/', '@', '\"', ' ' may be used, 8 to 128 of them"
	if len(v) < 8 || len(v) > 128 {
		return rule
	}
	for _, r := range v {
		if r < 0x21 || r > 0x7e || strings.ContainsRune(`/'"@`, r) {
			return rule
		}
	}
	return ""
}

// bucketName: S3's general purpose bucket naming rules.
func bucketName(v string) string {
	switch {
	case len(v) < 3 || len(v) > 63, !bucketChars.MatchString(v), strings.Contains(v, ".."),
		net.ParseIP(v) != nil:
		return "The specified bucket is not valid."
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(v, p) {
			return "The specified bucket is not valid."
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(v, s) {
			return "The specified bucket is not valid."
		}
	}
	return ""
}

// ssmParamName: the characters, at most 15 levels, and no aws or ssm
// prefix (either case) on the first level.
func ssmParamName(v string) string {
	if strings.HasPrefix(v, "arn:") {
		return "" // an ARN names a parameter; its name part was checked when made
	}
	if !ssmName.MatchString(v) {
		return "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_."
	}
	if strings.Count(v, "/") > 15 {
		return "Parameter name: hierarchies are limited to a maximum depth of fifteen levels"
	}
	first := strings.ToLower(strings.TrimPrefix(v, "/"))
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."
	}
	return ""
}

// policySize: an inline policy's size without whitespace, as IAM counts it.
func policySize(max int, what string) func(string) string {
	return func(v string) string {
		n := 0
		for _, r := range v {
			if r != ' ' && r != '\n' && r != '\t' && r != '\r' {
				n++
			}
		}
		if n > max {
			return fmt.Sprintf("Maximum policy size of %d bytes exceeded for %s", max, what)
		}
		return ""
	}
}

// checkDocumented applies the table's rules for svc.op to tree.
func checkDocumented(svc, op string, tree map[string]any) []violation {
	var out []violation
	for _, r := range Documented {
		if r.Service != svc || !contains(r.Ops, op) {
			continue
		}
		for _, at := range valuesAt(tree, strings.Split(r.Path, "."), "") {
			if msg := r.Check(at.value); msg != "" {
				v := violation{path: at.path, value: at.value, rule: msg, code: r.Code}
				if r.Sensitive {
					v.value = ""
				}
				out = append(out, v)
			}
		}
	}
	return out
}

type located struct{ path, value string }

// valuesAt are the string values at path in tree ("*": every list item),
// with their paths as AWS names them (list items counted from 1).
func valuesAt(node any, path []string, at string) []located {
	if len(path) == 0 {
		if s, ok := node.(string); ok {
			return []located{{at, s}}
		}
		return nil
	}
	var out []located
	switch n := node.(type) {
	case map[string]any:
		if child, ok := n[path[0]]; ok {
			out = append(out, valuesAt(child, path[1:], join(at, path[0]))...)
		}
	case []any:
		if path[0] == "*" {
			for i, item := range n {
				out = append(out, valuesAt(item, path[1:], fmt.Sprintf("%s.%d", at, i+1))...)
			}
		}
	}
	return out
}
