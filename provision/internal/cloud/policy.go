package cloud

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"

	"github.com/mlstack/mlstack/provision/region"
)

// ArtifactPrefix is where MLflow keeps artifacts in the stack bucket (the
// server's default artifact root and its proxied destination); the
// client key reaches nothing else of the bucket.
const ArtifactPrefix = "artifacts/"

// BucketPolicy is the client key's only access (the stack's IAM user): what
// MLflow's S3 artifact store does, on objects under artifacts/ and listings
// of that prefix, over TLS only. Every statement allows, under conditions,
// rather than denying the rest: IAM denies what no statement allows, and
// an explicit Deny keyed on aws:SecureTransport would deny everything in an
// emulator that cannot evaluate the key (moto ignores Bool and StringLike
// conditions; policy_test.go evaluates them as AWS does).
func BucketPolicy(partition, bucket string) string {
	arn := fmt.Sprintf("arn:%s:s3:::%s", partition, bucket)
	tlsOnly := map[string]any{"aws:SecureTransport": "true"}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{
				"Sid": "ListArtifacts", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn,
				"Condition": map[string]any{"Bool": tlsOnly, "StringLike": map[string]any{"s3:prefix": ArtifactPrefix + "*"}},
			},
			{
				"Sid": "BucketLocation", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": arn,
				"Condition": map[string]any{"Bool": tlsOnly},
			},
			{
				"Sid":    "Artifacts",
				"Effect": "Allow",
				"Action": []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
					"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
				"Resource":  arn + "/" + ArtifactPrefix + "*",
				"Condition": map[string]any{"Bool": tlsOnly},
			},
		},
	}
	b, _ := json.Marshal(doc) // cannot fail: only strings, slices and maps
	return string(b)
}

// ServerBucketPolicy is the server role's access to the bucket: the whole
// of it (the proxied artifacts, and what the server keeps there besides).
func ServerBucketPolicy(partition, bucket string) string {
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
	b, _ := json.Marshal(doc)
	return string(b)
}

// RolePolicy is the server role's access: the whole bucket,
// reading the stack's secrets, artifacts mode and database (postgres) from SSM, and publishing (and reading back)
// the public halves of its TLS and SSH keys there. Nothing else in SSM.
func RolePolicy(partition, account string, n Names) string {
	var doc map[string]any
	_ = json.Unmarshal([]byte(ServerBucketPolicy(partition, n.Bucket)), &doc) // our own JSON
	arn := func(name string) string {
		return fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s", partition, n.Region, account, n.Param(name))
	}
	var all, publish []string
	for _, name := range []string{ParamAdminPassword, ParamFlaskSecret, ParamArtifacts, ParamTLSCert, ParamHostKey, ParamDatabase, ParamDBPassword} {
		all = append(all, arn(name))
	}
	for _, name := range serverWrites {
		publish = append(publish, arn(name))
	}
	doc["Statement"] = append(doc["Statement"].([]any),
		map[string]any{"Sid": "StackParameters", "Effect": "Allow", "Action": []string{"ssm:GetParameter", "ssm:GetParameters"}, "Resource": all},
		map[string]any{"Sid": "PublishPublicKeys", "Effect": "Allow", "Action": "ssm:PutParameter", "Resource": publish},
	)
	b, _ := json.Marshal(doc)
	return string(b)
}

// EC2TrustPolicy lets EC2 instances of the region's partition assume the
// server role (the service principal differs in China).
func EC2TrustPolicy(regionName string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"` +
		region.Of(regionName).EC2Principal + `"},"Action":"sts:AssumeRole"}]}`
}

// SamePolicy compares two policy documents by meaning. IAM returns stored
// documents URL-encoded and may re-serialise them.
func SamePolicy(got, want string) bool {
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
