// Package trim cuts botocore's service models down to what awsmodel checks
// requests against: the operations mlstack calls, the shapes their inputs
// reach, and of each shape only its constraints (required, min, max,
// pattern, enum) and wire names (location, locationName, queryName,
// flattened), dropping the documentation that makes up most of a model.
package trim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// Service is one AWS service mlstack calls: botocore's folder and API
// version, and the operations.
type Service struct {
	Name, Version string
	Ops           []string
}

// Services are the operations mlstack sends (the SDK clients' methods its
// API interfaces use; cloudfake's TestModelsCoverFake checks the fake
// implements none outside them).
var Services = []Service{
	{"ec2", "2016-11-15", []string{"AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "CreateTags", "DeleteKeyPair",
		"DeleteSecurityGroup", "DescribeImages", "DescribeInstanceAttribute", "DescribeInstanceTypeOfferings",
		"DescribeInstanceTypes", "DescribeInstances", "DescribeKeyPairs", "DescribeRegions", "DescribeSecurityGroups",
		"DescribeSubnets", "DescribeVpcs", "GetConsoleOutput", "ImportKeyPair", "RebootInstances",
		"RevokeSecurityGroupIngress", "RunInstances", "StartInstances", "StopInstances", "TerminateInstances"}},
	{"iam", "2010-05-08", []string{"AddRoleToInstanceProfile", "CreateAccessKey", "CreateInstanceProfile", "CreateRole",
		"CreateUser", "DeleteAccessKey", "DeleteInstanceProfile", "DeleteLoginProfile", "DeleteRole", "DeleteRolePolicy",
		"DeleteUser", "DeleteUserPolicy", "DetachRolePolicy", "DetachUserPolicy", "GetInstanceProfile", "GetLoginProfile",
		"GetRole", "GetRolePolicy", "GetUser", "GetUserPolicy", "ListAccessKeys", "ListAttachedRolePolicies",
		"ListAttachedUserPolicies", "ListGroupsForUser", "ListInstanceProfilesForRole", "ListRolePolicies", "ListRoles",
		"ListUserPolicies", "ListUsers", "PutRolePolicy", "PutUserPolicy", "RemoveRoleFromInstanceProfile",
		"RemoveUserFromGroup", "TagInstanceProfile", "TagRole", "TagUser"}},
	{"rds", "2014-10-31", []string{"AddTagsToResource", "CreateDBInstance", "CreateDBSubnetGroup", "DeleteDBInstance",
		"DeleteDBSnapshot", "DeleteDBSubnetGroup", "DescribeDBEngineVersions", "DescribeDBInstances", "DescribeDBSnapshots", "DescribeDBSubnetGroups",
		"DescribeOrderableDBInstanceOptions", "ModifyDBInstance", "RestoreDBInstanceFromDBSnapshot"}},
	{"s3", "2006-03-01", []string{"AbortMultipartUpload", "CopyObject", "CreateBucket", "DeleteBucket", "DeleteObject",
		"DeleteObjects", "GetBucketEncryption", "GetBucketLocation", "GetBucketTagging", "GetObject", "GetPublicAccessBlock",
		"HeadBucket", "HeadObject", "ListBuckets", "ListMultipartUploads", "ListObjectVersions", "ListObjectsV2",
		"PutBucketEncryption", "PutBucketTagging", "PutObject", "PutPublicAccessBlock"}},
	{"ssm", "2014-11-06", []string{"AddTagsToResource", "DeleteParameter", "DeleteParameters", "DescribeParameters",
		"GetParameter", "GetParameters", "GetParametersByPath", "PutParameter"}},
	{"sts", "2011-06-15", []string{"GetCallerIdentity"}},
}

// kept are the shape fields that carry a rule or a wire name.
var kept = []string{"type", "required", "members", "member", "key", "value", "min", "max", "pattern", "enum",
	"location", "locationName", "queryName", "flattened", "sensitive", "shape", "xmlNamespace", "payload"}

// WriteAll trims every service's model from botocore's data folder dir
// into out/<service>.json.
func WriteAll(dir, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	version, err := botocoreVersion(dir)
	if err != nil {
		return err
	}
	for _, s := range Services {
		b, err := Trim(dir, s, version)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if err := os.WriteFile(filepath.Join(out, s.Name+".json"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Trim returns the trimmed model of one service, as indented JSON.
func Trim(dir string, s Service, version string) ([]byte, error) {
	full, err := readModel(filepath.Join(dir, s.Name, s.Version, "service-2.json.gz"))
	if err != nil {
		return nil, err
	}
	var meta struct {
		Protocol, ServiceID, SigningName, JSONVersion, TargetPrefix string
	}
	if err := json.Unmarshal(full["metadata"], &meta); err != nil {
		return nil, err
	}
	var ops map[string]struct {
		HTTP  json.RawMessage `json:"http"`
		Input *struct {
			Shape string `json:"shape"`
		} `json:"input"`
	}
	if err := json.Unmarshal(full["operations"], &ops); err != nil {
		return nil, err
	}
	var shapes map[string]map[string]json.RawMessage
	if err := json.Unmarshal(full["shapes"], &shapes); err != nil {
		return nil, err
	}
	outOps := map[string]any{}
	reached := map[string]bool{}
	for _, name := range s.Ops {
		op, ok := ops[name]
		if !ok {
			return nil, fmt.Errorf("botocore's model has no operation %s", name)
		}
		o := map[string]any{"http": op.HTTP}
		if op.Input != nil {
			o["input"] = op.Input.Shape
			reach(shapes, op.Input.Shape, reached)
		}
		outOps[name] = o
	}
	outShapes := map[string]any{}
	for name := range reached {
		outShapes[name] = keep(shapes[name])
	}
	model := map[string]any{
		"botocore":   version,
		"metadata":   map[string]string{"protocol": meta.Protocol, "signingName": meta.SigningName, "jsonVersion": meta.JSONVersion, "targetPrefix": meta.TargetPrefix},
		"operations": outOps,
		"shapes":     outShapes,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	err = enc.Encode(model)
	return buf.Bytes(), err
}

// reach marks shape name and every shape it refers to.
func reach(shapes map[string]map[string]json.RawMessage, name string, seen map[string]bool) {
	if seen[name] {
		return
	}
	seen[name] = true
	sh := shapes[name]
	var refs []struct {
		Shape string `json:"shape"`
	}
	for _, k := range []string{"member", "key", "value"} {
		if raw, ok := sh[k]; ok {
			var r struct {
				Shape string `json:"shape"`
			}
			_ = json.Unmarshal(raw, &r)
			refs = append(refs, r)
		}
	}
	if raw, ok := sh["members"]; ok {
		var members map[string]struct {
			Shape string `json:"shape"`
		}
		_ = json.Unmarshal(raw, &members)
		for _, m := range members {
			refs = append(refs, m)
		}
	}
	for _, r := range refs {
		reach(shapes, r.Shape, seen)
	}
}

// keep drops every field of a shape (and of its member references) but
// the kept ones.
func keep(sh map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for _, k := range kept {
		raw, ok := sh[k]
		if !ok {
			continue
		}
		switch k {
		case "members":
			var members map[string]map[string]json.RawMessage
			_ = json.Unmarshal(raw, &members)
			m := map[string]any{}
			for name, ref := range members {
				m[name] = keep(ref)
			}
			out[k] = m
		case "member", "key", "value":
			var ref map[string]json.RawMessage
			_ = json.Unmarshal(raw, &ref)
			out[k] = keep(ref)
		default:
			out[k] = raw
		}
	}
	return out
}

func readModel(path string) (map[string]json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	return m, json.Unmarshal(b, &m)
}

var versionRe = regexp.MustCompile(`__version__ = '([^']+)'`)

// botocoreVersion reads the version from the package's __init__.py, next
// to the data folder.
func botocoreVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "..", "__init__.py"))
	if err != nil {
		return "", err
	}
	m := versionRe.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("no __version__ in botocore's __init__.py")
	}
	return string(m[1]), nil
}

// Ops lists "service.Operation" for every operation of Services, sorted.
func Ops() []string {
	var out []string
	for _, s := range Services {
		for _, op := range s.Ops {
			out = append(out, s.Name+"."+op)
		}
	}
	sort.Strings(out)
	return out
}
