package main

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

func TestPolicyCommand(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		want     string // in stdout (exit 0) or stderr
		forbids  string // an action the policy must not grant
		requires string // one it must
	}{
		{[]string{"policy", "operator"}, 0, `"Version": "2012-10-17"`, "", "iam:PassRole"},
		{[]string{"policy", "sweeper"}, 0, `"Version": "2012-10-17"`, "ec2:RunInstances", "iam:DeleteUser"},
		{[]string{"policy", "admin"}, 2, `policy "admin": give operator or sweeper`, "", ""},
		{[]string{"policy"}, 2, "policy needs the policy's name: operator or sweeper", "", ""},
		{[]string{"policy", "operator", "sweeper"}, 2, "policy takes one argument", "", ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb strings.Builder
			code := run(context.Background(), append([]string{"mlstack"}, c.args...), strings.NewReader(""), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, errb.String())
			}
			if code != 0 {
				if !strings.Contains(errb.String(), c.want) || out.Len() > 0 {
					t.Errorf("stderr %q, stdout %q: want %q on stderr only", errb.String(), out.String(), c.want)
				}
				return
			}
			if !strings.Contains(out.String(), c.want) || errb.Len() > 0 {
				t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
			}
			actions := policyActions(t, out.String())
			if c.forbids != "" && slices.Contains(actions, c.forbids) {
				t.Errorf("grants %s", c.forbids)
			}
			if !slices.Contains(actions, c.requires) {
				t.Errorf("does not grant %s", c.requires)
			}
		})
	}
}

// policyStatement is one statement of an IAM policy, its elements as
// given (a string or a list).
type policyStatement map[string]any

// policyStatements parses a policy document as IAM reads it: valid JSON,
// Version 2012-10-17, a list of statements, each with Effect, Action and
// Resource; at most 6,144 characters without whitespace (a managed
// policy's limit, IAM's quotas page).
func policyStatements(t *testing.T, doc string) []policyStatement {
	t.Helper()
	var d struct {
		Version   string
		Statement []policyStatement
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil || d.Version != "2012-10-17" || len(d.Statement) == 0 {
		t.Fatalf("not a policy document IAM takes (%v, Version %q):\n%s", err, d.Version, doc)
	}
	if n := len(strings.Join(strings.Fields(doc), "")); n > 6144 {
		t.Errorf("policy is %d characters without whitespace: over a managed policy's 6,144", n)
	}
	for _, s := range d.Statement {
		if s["Effect"] != "Allow" || s["Action"] == nil || s["Resource"] == nil {
			t.Errorf("statement %v: want Effect Allow, Action and Resource", s)
		}
	}
	return d.Statement
}

// list is a statement element as a list.
func (s policyStatement) list(key string) []string {
	switch v := s[key].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func policyActions(t *testing.T, doc string) []string {
	t.Helper()
	var out []string
	for _, s := range policyStatements(t, doc) {
		out = append(out, s.list("Action")...)
	}
	return out
}

// motoS3Names: moto checks an S3 request against its operation's name
// where IAM's permission has another (moto/s3/responses.py sets
// data["Action"] per handler); the statement that grants the permission
// grants moto's name too, on the same resources.
var motoS3Names = map[string][]string{
	"s3:ListBucket":                 {"s3:HeadBucket", "s3:ListObjectsV2"},
	"s3:ListBucketVersions":         {"s3:ListObjectVersions"},
	"s3:ListBucketMultipartUploads": {"s3:ListMultipartUploads"},
	"s3:ListAllMyBuckets":           {"s3:ListBuckets"},
	"s3:GetEncryptionConfiguration": {"s3:GetBucketEncryption"},
	"s3:PutEncryptionConfiguration": {"s3:PutBucketEncryption"},
	"s3:GetBucketPublicAccessBlock": {"s3:GetPublicAccessBlock"},
	"s3:PutBucketPublicAccessBlock": {"s3:PutPublicAccessBlock"},
	"s3:DeleteObject":               {"s3:DeleteObjects"},
	"s3:PutObject":                  {"s3:CopyObject"},
	"s3:GetObject":                  {"s3:HeadObject"},
}

// motoForm is doc as moto can enforce it: moto asks every non-S3 request
// about resource "*" (only IAM's role calls name their role), so a
// statement scoped to other ARNs would deny all; those statements get
// Resource "*". S3 statements keep their bucket and object ARNs, which
// moto does check (and name moto's names for S3 permissions). Conditions
// stay as shipped.
func motoForm(t *testing.T, doc string) string {
	t.Helper()
	sts := policyStatements(t, doc)
	for _, s := range sts {
		res := s.list("Resource")
		if !slices.ContainsFunc(res, func(r string) bool { return strings.HasPrefix(r, "arn:aws:s3:::") }) {
			s["Resource"] = "*"
			continue
		}
		actions := s.list("Action")
		for _, a := range s.list("Action") {
			actions = append(actions, motoS3Names[a]...)
		}
		s["Action"] = actions
		// moto asks about DeleteObjects as s3:DeleteObject on the bucket's
		// ARN, not each object's (s3/responses.py): object statements
		// name their buckets too.
		for _, r := range res {
			if b, ok := strings.CutSuffix(r, "/*"); ok {
				res = append(res, b)
			}
		}
		s["Resource"] = res
	}
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": sts})
	must(t, err)
	return string(b)
}

// policyUser is an IAM user holding one policy, and its access key.
type policyUser struct{ user, key, secret string }

// policyUsers makes, with moto's first unauthenticated calls, one IAM user
// per policy holding only that policy in its moto form, then switches
// enforcement on: from then on every request is checked against the
// policies of whoever signed it. They live at path / (a user under
// /mlstack/ is a stack's, and mlstack refuses to run with its keys).
func policyUsers(t *testing.T, e *env, names ...string) map[string]policyUser {
	t.Helper()
	ctx := context.Background()
	const setupCalls = 4 // per user: CreatePolicy, CreateUser, AttachUserPolicy, CreateAccessKey
	motoAPI(t, e.moto, "/moto-api/reset-auth", strconv.Itoa(setupCalls*len(names)))
	out := map[string]policyUser{}
	for _, name := range names {
		var doc strings.Builder
		if code := run(ctx, []string{"mlstack", "policy", name}, strings.NewReader(""), &doc, &strings.Builder{}); code != 0 {
			t.Fatalf("mlstack policy %s: exit %d", name, code)
		}
		user := "ci-" + name
		pol, err := e.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("mlstack-" + name), PolicyDocument: aws.String(motoForm(t, doc.String()))})
		must(t, err)
		_, err = e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)})
		must(t, err)
		_, err = e.iam.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(user), PolicyArn: pol.Policy.Arn})
		must(t, err)
		key, err := e.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
		must(t, err)
		out[name] = policyUser{user, aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey)}
		t.Cleanup(func() { dropPolicyUser(t, e, user, aws.ToString(pol.Policy.Arn), out[name].key) })
	}
	t.Cleanup(func() { motoAPI(t, e.moto, "/moto-api/reset-auth", "inf") }) // runs first: the admin cleans up
	return out
}

// dropPolicyUser deletes a user policyUsers made, as the admin.
func dropPolicyUser(t *testing.T, e *env, user, policy, key string) {
	ctx := context.Background()
	_, err := e.iam.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(user), PolicyArn: aws.String(policy)})
	must(t, err)
	_, err = e.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(key)})
	must(t, err)
	_, err = e.iam.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(user)})
	must(t, err)
	_, err = e.iam.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(policy)})
	must(t, err)
}

// as makes the in-process CLI sign with p's key.
func (p policyUser) as(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", p.key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", p.secret)
}

// TestPolicyLifecycle proves the shipped policies against moto with IAM
// enforcement: a user holding only the operator policy runs a stack's
// whole life, one holding only the sweeper policy sweeps an expired stack
// the operator made, and is refused up.
func TestPolicyLifecycle(t *testing.T) {
	e := newEnv(t)
	users := policyUsers(t, e, "operator", "sweeper")
	flags := e.stackFlags("pol")

	users["operator"].as(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	for _, cmd := range [][]string{{"status"}, {"env"}, {"creds", "rotate", "--skip-mlflow"}, {"logs"}} {
		e.ok(append(cmd, flags...)...)
	}
	e.ok("ls")
	// These need a server moto cannot run (SSH, MLflow): they get as far
	// as their reads and stop for their own reason, never for a permission.
	for _, c := range []struct {
		args []string
		code int
		why  string
	}{
		{[]string{"backup"}, 1, "SSH is off"},
		{[]string{"ssh"}, 1, "SSH is off"},
	} {
		if res := e.mlstack(append(c.args, flags...)...); res.code != c.code || !strings.Contains(res.stderr, c.why) || strings.Contains(res.stderr, "AccessDenied") {
			t.Errorf("%v: exit %d, want %d for %q:\n%s", c.args, res.code, c.code, c.why, res.stderr)
		}
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)

	// A postgres stack through down --keep-data (a final snapshot) and the
	// up that restores it; then a stack with a TTL the sweep deletes.
	pg := e.stackFlags("polpg")
	for _, args := range [][]string{{"up", "--no-wait", "--db", "postgres", "--allow-cidr", allowCIDR}, {"down", "--keep-data", "--yes"},
		{"up", "--no-wait", "--db", "postgres", "--allow-cidr", allowCIDR}, {"down", "--yes"}} {
		e.ok(append(args, pg...)...)
	}
	e.ok(append([]string{"up", "--no-wait", "--ttl", "1s", "--allow-cidr", allowCIDR}, e.stackFlags("polttl")...)...)
	time.Sleep(1100 * time.Millisecond)

	users["sweeper"].as(t)
	res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("nope")...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "AccessDenied") || !strings.Contains(res.stderr, "user/ci-sweeper is not authorized") ||
		!strings.Contains(res.stderr, "`mlstack policy operator` prints the IAM policy every command needs") {
		t.Errorf("the sweeper's up: exit %d, want 1 naming the refused action and the policy that grants it:\n%s", res.code, res.stderr)
	}
	e.ok("down", "--expired", "--any-owner", "--yes", "--state-dir", e.stateDir)

	motoAPI(t, e.moto, "/moto-api/reset-auth", "inf")
	e.assertNothingLeft("iam-user ci-operator", "iam-user ci-sweeper",
		"access-key "+users["operator"].key, "access-key "+users["sweeper"].key)
}
