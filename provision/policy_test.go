package provision

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// policyDoc is the subset of an IAM policy document the tests inspect.
type policyDoc struct {
	Version   string
	Statement []struct {
		Sid      string
		Effect   string
		Action   []string
		Resource string
	}
}

func TestBucketPolicyScope(t *testing.T) {
	tests := []struct {
		partition, bucket string
	}{
		{"aws", "mlstack-demo-123456789012-eu-west-3"},
		{"aws-us-gov", "mlstack-demo-123456789012-us-gov-west-1"},
		{"aws-cn", "mlstack-x-123456789012-cn-north-1"},
	}
	for _, tt := range tests {
		t.Run(tt.partition, func(t *testing.T) {
			raw := bucketPolicy(tt.partition, tt.bucket)
			var doc policyDoc
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.DisallowUnknownFields() // no Principal, Condition or NotAction sneaking in
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("policy is not the expected JSON shape: %v\n%s", err, raw)
			}
			if doc.Version != "2012-10-17" {
				t.Errorf("Version = %q", doc.Version)
			}
			if len(doc.Statement) == 0 {
				t.Fatal("no statements")
			}
			arn := "arn:" + tt.partition + ":s3:::" + tt.bucket
			allowed := map[string]bool{arn: true, arn + "/*": true}
			seen := map[string]bool{}
			for _, st := range doc.Statement {
				if st.Effect != "Allow" {
					t.Errorf("statement %s: Effect %q", st.Sid, st.Effect)
				}
				if !allowed[st.Resource] {
					t.Errorf("statement %s: resource %q is outside the stack bucket", st.Sid, st.Resource)
				}
				seen[st.Resource] = true
				if len(st.Action) == 0 {
					t.Errorf("statement %s has no actions", st.Sid)
				}
				for _, a := range st.Action {
					// Only S3, and no wildcard that could grant bucket policy or ACL changes.
					if !strings.HasPrefix(a, "s3:") || strings.Contains(a, "*") {
						t.Errorf("statement %s: action %q", st.Sid, a)
					}
				}
			}
			// MLflow needs both the bucket (list) and its objects (get/put).
			if !seen[arn] || !seen[arn+"/*"] {
				t.Errorf("resources covered: %v, want both the bucket and its objects", seen)
			}
		})
	}
}

func TestSamePolicy(t *testing.T) {
	want := bucketPolicy("aws", "mlstack-demo-123456789012-eu-west-3")
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
		{"other bucket", bucketPolicy("aws", "mlstack-other-123456789012-eu-west-3"), false},
		{"other bucket url-encoded", url.QueryEscape(bucketPolicy("aws", "mlstack-other-123456789012-eu-west-3")), false},
		{"other partition", bucketPolicy("aws-cn", "mlstack-demo-123456789012-eu-west-3"), false},
		{"not JSON", "not json", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := samePolicy(tt.got, want); got != tt.same {
				t.Errorf("samePolicy = %v, want %v\ngot doc: %s", got, tt.same, tt.got)
			}
		})
	}
}

// The trust policy must let only EC2 assume the server role, with the
// partition's service principal.
func TestEC2TrustPolicy(t *testing.T) {
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
		if err := json.Unmarshal([]byte(ec2TrustPolicy(region)), &doc); err != nil {
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
