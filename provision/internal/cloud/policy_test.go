package cloud_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

// iamRequest is one call as IAM evaluates it: the action, the resource ARN
// and the request's condition keys.
type iamRequest struct {
	action, resource string
	keys             map[string]string
}

// strings1 reads a policy element that is a string or a list of strings.
func strings1(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// globMatch is IAM's wildcard match: * any run of characters, ? one.
func globMatch(pattern, s string, fold bool) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	if fold {
		re = "(?i)" + re
	}
	return regexp.MustCompile(re).MatchString(s)
}

// evaluate answers as IAM does for one identity policy: an explicit Deny
// that matches wins, else a matching Allow, else the implicit deny. A
// statement matches when its action, its resource and every condition do.
// It knows the condition operators mlstack's policies use, Bool and
// StringLike; a key the request lacks matches neither (AWS: no ...IfExists).
// moto cannot stand in here: it ignores both operators (it evaluates
// StringEquals alone), so this is what proves the TLS and prefix limits.
func evaluate(t *testing.T, policy string, r iamRequest) bool {
	t.Helper()
	var doc struct{ Statement []map[string]any }
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatalf("policy: %v", err)
	}
	allowed := false
	for _, st := range doc.Statement {
		if !matchesAny(st["Action"], r.action, true) || !matchesAny(st["Resource"], r.resource, false) || !conditionsHold(t, st["Condition"], r.keys) {
			continue
		}
		if st["Effect"] == "Deny" {
			return false
		}
		allowed = true
	}
	return allowed
}

func matchesAny(patterns any, s string, fold bool) bool {
	for _, p := range strings1(patterns) {
		if globMatch(p, s, fold) {
			return true
		}
	}
	return false
}

func conditionsHold(t *testing.T, cond any, keys map[string]string) bool {
	t.Helper()
	ops, _ := cond.(map[string]any)
	for op, byKey := range ops {
		for key, want := range byKey.(map[string]any) {
			got, ok := keys[key]
			if !ok {
				return false
			}
			hit := false
			for _, w := range strings1(want) {
				switch op {
				case "Bool":
					hit = hit || strings.EqualFold(w, got)
				case "StringLike":
					hit = hit || globMatch(w, got, false)
				default:
					t.Fatalf("condition operator %s: teach evaluate how IAM reads it", op)
				}
			}
			if !hit {
				return false
			}
		}
	}
	return true
}

// TestClientKeyLeastPrivilege: the client key (the stack's IAM user) may use
// objects under artifacts/ and list that prefix, over TLS only; nothing
// else of the bucket, no other bucket, no bucket settings, no plain HTTP.
// The server role keeps the whole bucket.
func TestClientKeyLeastPrivilege(t *testing.T) {
	t.Parallel()
	const bucket = "mlstack-demo-123456789012-eu-west-3-an"
	arn := "arn:aws:s3:::" + bucket
	tls := map[string]string{"aws:SecureTransport": "true"}
	plain := map[string]string{"aws:SecureTransport": "false"}
	list := func(prefix string, secure bool) map[string]string {
		k := map[string]string{"aws:SecureTransport": fmt.Sprint(secure)}
		if prefix != "-" {
			k["s3:prefix"] = prefix
		}
		return k
	}
	client, role := cloud.BucketPolicy("aws", bucket), cloud.RolePolicy("aws", "123456789012", cloud.NamesFor("demo", "123456789012", "eu-west-3"))
	for _, tt := range []struct {
		name   string
		req    iamRequest
		client bool // allowed to the client key
		role   bool // allowed to the server role
	}{
		{"put an artifact", iamRequest{"s3:PutObject", arn + "/artifacts/1/run/artifacts/model.pkl", tls}, true, true},
		{"get an artifact", iamRequest{"s3:GetObject", arn + "/artifacts/1/run/artifacts/model.pkl", tls}, true, true},
		{"delete an artifact", iamRequest{"s3:DeleteObject", arn + "/artifacts/1/x", tls}, true, true},
		{"multipart parts", iamRequest{"s3:ListMultipartUploadParts", arn + "/artifacts/1/x", tls}, true, true},
		{"list the artifacts", iamRequest{"s3:ListBucket", arn, list("artifacts/1/run/artifacts/", true)}, true, true},
		{"list the prefix itself", iamRequest{"s3:ListBucket", arn, list("artifacts/", true)}, true, true},
		{"bucket location", iamRequest{"s3:GetBucketLocation", arn, tls}, true, true},
		{"put over plain HTTP", iamRequest{"s3:PutObject", arn + "/artifacts/1/x", plain}, false, true},
		{"get over plain HTTP", iamRequest{"s3:GetObject", arn + "/artifacts/1/x", plain}, false, true},
		{"list over plain HTTP", iamRequest{"s3:ListBucket", arn, list("artifacts/", false)}, false, true},
		{"put outside the prefix", iamRequest{"s3:PutObject", arn + "/backups/mlflow.db", tls}, false, true},
		{"get outside the prefix", iamRequest{"s3:GetObject", arn + "/backups/mlflow.db", tls}, false, true},
		{"delete outside the prefix", iamRequest{"s3:DeleteObject", arn + "/backups/mlflow.db", tls}, false, true},
		{"a look-alike prefix", iamRequest{"s3:PutObject", arn + "/artifactsX/evil", tls}, false, true},
		{"replace the install lock", iamRequest{"s3:PutObject", arn + "/bootstrap/mlflow-lock-x86_64-0123.txt", tls}, false, true},
		{"read the install lock", iamRequest{"s3:GetObject", arn + "/bootstrap/mlflow-lock-x86_64-0123.txt", tls}, false, true},
		{"list the whole bucket", iamRequest{"s3:ListBucket", arn, list("-", true)}, false, true},
		{"list another prefix", iamRequest{"s3:ListBucket", arn, list("backups/", true)}, false, true},
		{"another bucket", iamRequest{"s3:GetObject", "arn:aws:s3:::other-bucket/artifacts/x", tls}, false, false},
		{"delete the bucket", iamRequest{"s3:DeleteBucket", arn, tls}, false, false},
		{"change the bucket policy", iamRequest{"s3:PutBucketPolicy", arn, tls}, false, false},
		{"object ACLs", iamRequest{"s3:PutObjectAcl", arn + "/artifacts/x", tls}, false, false},
	} {
		if got := evaluate(t, client, tt.req); got != tt.client {
			t.Errorf("client key, %s: allowed %v, want %v", tt.name, got, tt.client)
		}
		if got := evaluate(t, role, tt.req); got != tt.role {
			t.Errorf("server role, %s: allowed %v, want %v", tt.name, got, tt.role)
		}
	}
}

// TestBucketPolicyShape: only S3 actions, none with a wildcard, only the
// stack bucket, in every partition.
func TestBucketPolicyShape(t *testing.T) {
	t.Parallel()
	for _, partition := range []string{"aws", "aws-us-gov", "aws-cn"} {
		var doc struct{ Statement []map[string]any }
		must(t, json.Unmarshal([]byte(cloud.BucketPolicy(partition, "mlstack-x-123456789012-cn-north-1")), &doc))
		arn := "arn:" + partition + ":s3:::mlstack-x-123456789012-cn-north-1"
		for _, st := range doc.Statement {
			for _, a := range strings1(st["Action"]) {
				if !strings.HasPrefix(a, "s3:") || strings.Contains(a, "*") {
					t.Errorf("%s: action %q", partition, a)
				}
			}
			for _, r := range strings1(st["Resource"]) {
				if r != arn && !strings.HasPrefix(r, arn+"/artifacts/") {
					t.Errorf("%s: resource %q is outside the artifact prefix", partition, r)
				}
			}
			if st["Effect"] != "Allow" || st["Condition"] == nil {
				t.Errorf("%s: statement %v: every statement allows, on TLS at least", partition, st["Sid"])
			}
		}
	}
}

func TestSamePolicy(t *testing.T) {
	t.Parallel()
	want := cloud.ServerBucketPolicy("aws", "mlstack-demo-123456789012-eu-west-3")
	// The same meaning with keys in another order and whitespace, as IAM may re-serialise it.
	reordered := `{
  "Statement": [
    {"Resource": "arn:aws:s3:::mlstack-demo-123456789012-eu-west-3", "Effect": "Allow", "Sid": "StackBucket",
     "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]},
    {"Effect": "Allow", "Sid": "StackObjects", "Resource": "arn:aws:s3:::mlstack-demo-123456789012-eu-west-3/*",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]}
  ],
  "Version": "2012-10-17"
}`
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"identical", want, true},
		{"url-encoded", url.QueryEscape(want), true},
		{"path-escaped", url.PathEscape(want), true},
		{"re-ordered keys", reordered, true},
		{"re-ordered and url-encoded", url.QueryEscape(reordered), true},
		{"other bucket", cloud.ServerBucketPolicy("aws", "mlstack-other-123456789012-eu-west-3"), false},
		{"other bucket url-encoded", url.QueryEscape(cloud.ServerBucketPolicy("aws", "mlstack-other-123456789012-eu-west-3")), false},
		{"other partition", cloud.ServerBucketPolicy("aws-cn", "mlstack-demo-123456789012-eu-west-3"), false},
		{"not JSON", "not json", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloud.SamePolicy(tt.got, want); got != tt.same {
				t.Errorf("samePolicy = %v, want %v\ngot doc: %s", got, tt.same, tt.got)
			}
		})
	}
}

// The trust policy must let only EC2 assume the server role, with the
// partition's service principal.
func TestEC2TrustPolicy(t *testing.T) {
	t.Parallel()
	for region, principal := range map[string]string{
		"eu-west-3": "ec2.amazonaws.com", "us-gov-west-1": "ec2.amazonaws.com", "cn-north-1": "ec2.amazonaws.com.cn",
	} {
		var doc struct {
			Statement []struct {
				Effect    string
				Principal map[string]string
				Action    string
			}
		}
		if err := json.Unmarshal([]byte(cloud.EC2TrustPolicy(region)), &doc); err != nil {
			t.Fatalf("trust policy is not JSON: %v", err)
		}
		if len(doc.Statement) != 1 {
			t.Fatalf("want one statement, got %d", len(doc.Statement))
		}
		st := doc.Statement[0]
		if st.Effect != "Allow" || st.Action != "sts:AssumeRole" || len(st.Principal) != 1 || st.Principal["Service"] != principal {
			t.Errorf("%s: unexpected trust statement %+v", region, st)
		}
	}
}
