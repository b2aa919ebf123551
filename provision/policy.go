package provision

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"

	"github.com/mlstack/mlstack/provision/region"
)

// bucketPolicy is the only access the stack's user and server role get:
// what MLflow's S3 artifact store does on the stack bucket and its objects.
func bucketPolicy(partition, bucket string) string {
	arn := fmt.Sprintf("arn:%s:s3:::%s", partition, bucket)
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{
				"Sid":      "StackBucket",
				"Effect":   "Allow",
				"Action":   []string{"s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"},
				"Resource": arn,
			},
			{
				"Sid":    "StackObjects",
				"Effect": "Allow",
				"Action": []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
					"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
				"Resource": arn + "/*",
			},
		},
	}
	b, _ := json.Marshal(doc) // cannot fail: only strings, slices and maps
	return string(b)
}

// ec2TrustPolicy lets EC2 instances of the region's partition assume the
// server role (the service principal differs in China).
func ec2TrustPolicy(regionName string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"` +
		region.Of(regionName).EC2Principal + `"},"Action":"sts:AssumeRole"}]}`
}

// samePolicy compares two policy documents by meaning. IAM returns stored
// documents URL-encoded and may re-serialise them.
func samePolicy(got, want string) bool {
	if dec, err := url.QueryUnescape(got); err == nil {
		got = dec
	}
	var a, b any
	if json.Unmarshal([]byte(got), &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(unwrapSingles(a), unwrapSingles(b))
}

// unwrapSingles turns one-element lists into their element: IAM treats
// "Action": ["x"] and "Action": "x" alike, and may store either.
func unwrapSingles(v any) any {
	switch t := v.(type) {
	case []any:
		if len(t) == 1 {
			return unwrapSingles(t[0])
		}
		for i := range t {
			t[i] = unwrapSingles(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = unwrapSingles(t[k])
		}
	}
	return v
}
