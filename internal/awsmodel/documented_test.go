package awsmodel

import (
	"strings"
	"testing"
)

// TestDocumentedPaths: every rule of the table names operations the models
// know and a path that reaches a string member of their input, so that no
// rule silently never applies.
func TestDocumentedPaths(t *testing.T) {
	ms, err := Models()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Documented {
		if !strings.HasPrefix(r.Link, "https://docs.aws.amazon.com/") {
			t.Errorf("%s: the link %q is not AWS's documentation", r.Name, r.Link)
		}
		m := ms[r.Service]
		for _, op := range r.Ops {
			o, ok := m.Operations[op]
			if !ok {
				t.Errorf("%s: %s has no operation %s", r.Name, r.Service, op)
				continue
			}
			sh := m.Shapes[o.Input]
			for _, seg := range strings.Split(r.Path, ".") {
				if seg == "*" {
					if sh.Type != "list" {
						t.Fatalf("%s: %s.%s: * on a %s", r.Name, op, r.Path, sh.Type)
					}
					sh = m.Shapes[sh.Member.Shape]
					continue
				}
				ref, ok := sh.Members[seg]
				if !ok {
					t.Fatalf("%s: %s's input has no member %s on the way to %s", r.Name, op, seg, r.Path)
				}
				sh = m.Shapes[ref.Shape]
			}
			if sh.Type != "string" && sh.Type != "blob" {
				t.Errorf("%s: %s.%s is a %s, not a string", r.Name, op, r.Path, sh.Type)
			}
		}
	}
	t.Logf("%d documented rules", len(Documented))
}

func TestDocumentedRules(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		svc, op string
		tree    map[string]any
		code    string // "" allowed
		inMsg   string
	}{
		{"ec2", "CreateSecurityGroup", map[string]any{"GroupName": "mlstack-demo.db", "Description": "mlstack demo: PostgreSQL from the server group only"}, "", ""},
		{"ec2", "CreateSecurityGroup", map[string]any{"GroupName": "mlstack-demo.db", "Description": "mlstack demo: PostgreSQL from the server's group only"}, "InvalidParameterValue", "at 'description'"},
		{"ec2", "CreateSecurityGroup", map[string]any{"GroupName": "sg-mine", "Description": "d"}, "InvalidParameterValue", "sg-*"},
		{"ec2", "CreateSecurityGroup", map[string]any{"GroupName": "g", "Description": "café"}, "InvalidParameterValue", "Valid characters"},
		{"ec2", "AuthorizeSecurityGroupIngress", map[string]any{"GroupId": "sg-1", "IpPermissions": []any{map[string]any{"IpRanges": []any{map[string]any{"CidrIp": "1.2.3.4/32", "Description": "alice's laptop"}}}}}, "InvalidParameterValue", "ipPermissions.1.ipRanges.1.description"},
		{"ec2", "AuthorizeSecurityGroupIngress", map[string]any{"GroupId": "sg-1", "IpPermissions": []any{map[string]any{"UserIdGroupPairs": []any{map[string]any{"GroupId": "sg-2", "Description": "mlstack server"}}}}}, "", ""},
		{"s3", "PutBucketTagging", map[string]any{"Bucket": "b", "Tagging": map[string]any{"TagSet": []any{map[string]any{"Key": "mlstack:owner", "Value": "arn:aws:iam::1:user/a,b"}}}}, "InvalidTag", "tagging.tagSet.1.value"},
		{"s3", "PutBucketTagging", map[string]any{"Bucket": "b", "Tagging": map[string]any{"TagSet": []any{map[string]any{"Key": "aws:x", "Value": "v"}}}}, "InvalidTag", "aws:"},
		{"ssm", "PutParameter", map[string]any{"Name": "/mlstack/d/x", "Value": "v", "Tags": []any{map[string]any{"Key": "k", "Value": long}}}, "ValidationException", "at most 256"},
		{"rds", "AddTagsToResource", map[string]any{"ResourceName": "arn", "Tags": []any{map[string]any{"Key": "k", "Value": "a,b"}}}, "InvalidParameterValue", "tags.1.value"},
		{"ec2", "CreateTags", map[string]any{"Resources": []any{"i-1"}, "Tags": []any{map[string]any{"Key": "k", "Value": "a,b'c"}}}, "", ""}, // EC2 is looser
		{"s3", "CreateBucket", map[string]any{"Bucket": "mlstack-demo-123456789012-eu-west-3-an"}, "", ""},
		{"s3", "CreateBucket", map[string]any{"Bucket": "MLstack"}, "InvalidBucketName", "not valid"},
		{"s3", "CreateBucket", map[string]any{"Bucket": "192.168.1.1"}, "InvalidBucketName", ""},
		{"s3", "CreateBucket", map[string]any{"Bucket": "ab"}, "InvalidBucketName", ""},
		{"s3", "CreateBucket", map[string]any{"Bucket": "mlstack--x-s3"}, "InvalidBucketName", ""},
		{"ssm", "PutParameter", map[string]any{"Name": "/mlstack/demo/admin password", "Value": "v"}, "ValidationException", "Parameter name"},
		{"ssm", "PutParameter", map[string]any{"Name": "/aws/mine", "Value": "v"}, "ValidationException", "prefixed"},
		{"ssm", "PutParameter", map[string]any{"Name": "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", "Value": "v"}, "ValidationException", "fifteen"},
		{"ssm", "PutParameter", map[string]any{"Name": "/mlstack/x", "Value": strings.Repeat("s", 4097)}, "ValidationException", "4096"},
		{"rds", "CreateDBInstance", map[string]any{"DBInstanceIdentifier": "mlstack-demo", "DBInstanceClass": "db.t4g.micro", "Engine": "postgres", "MasterUsername": "mlstack", "MasterUserPassword": "S3cret-pass.word"}, "", ""},
		{"rds", "CreateDBInstance", map[string]any{"DBInstanceIdentifier": "mlstack--demo", "DBInstanceClass": "c", "Engine": "postgres"}, "InvalidParameterValue", "consecutive hyphens"},
		{"rds", "CreateDBInstance", map[string]any{"DBInstanceIdentifier": "demo-", "DBInstanceClass": "c", "Engine": "postgres"}, "InvalidParameterValue", ""},
		{"rds", "CreateDBInstance", map[string]any{"DBInstanceIdentifier": "d", "DBInstanceClass": "c", "Engine": "postgres", "MasterUserPassword": "has@sign-secret"}, "InvalidParameterValue", "not a valid password"},
		{"rds", "CreateDBInstance", map[string]any{"DBInstanceIdentifier": "d", "DBInstanceClass": "c", "Engine": "postgres", "MasterUsername": "1admin"}, "InvalidParameterValue", "MasterUsername"},
		{"iam", "PutUserPolicy", map[string]any{"UserName": "u", "PolicyName": "p", "PolicyDocument": "{\"a\": \"" + strings.Repeat("x", 2100) + "\"}"}, "LimitExceeded", "2048"},
		{"iam", "PutRolePolicy", map[string]any{"RoleName": "u", "PolicyName": "p", "PolicyDocument": "{\"a\": \"" + strings.Repeat("x", 2100) + "\"}"}, "", ""},
		{"ec2", "ImportKeyPair", map[string]any{"KeyName": "mlstack-démo", "PublicKeyMaterial": []byte("k")}, "InvalidParameterValue", "ASCII"},
	} {
		err := CheckTree(tc.svc, tc.op, tc.tree)
		name := tc.svc + "." + tc.op
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", name, err)
			}
			continue
		}
		if err == nil || err.Code != tc.code || !strings.Contains(err.Message, tc.inMsg) {
			t.Errorf("%s %v: got %v, want %s containing %q", name, tc.tree, err, tc.code, tc.inMsg)
		}
		if err != nil && strings.Contains(err.Message, "secret") {
			t.Errorf("%s: the message echoes a secret: %s", name, err.Message)
		}
	}
}
