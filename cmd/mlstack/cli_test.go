package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestBadInputCreatesNothing: usage errors exit 2 with one line and make no
// AWS call at all (or only the read-only identity check).
func TestBadInputCreatesNothing(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no stack", []string{"up", "--allow-cidr", allowCIDR}, "missing stack name"},
		{"uppercase stack", []string{"up", "--stack", "Demo", "--allow-cidr", allowCIDR}, "lowercase"},
		{"stack starts with digit", []string{"up", "--stack", "1demo", "--allow-cidr", allowCIDR}, "starting with a letter"},
		{"stack too long", []string{"up", "--stack", strings.Repeat("a", 25), "--allow-cidr", allowCIDR}, "at most 24"},
		{"trailing hyphen", []string{"up", "--stack", "demo-", "--allow-cidr", allowCIDR}, "hyphens"},
		{"bad cidr", []string{"up", "--stack", "demo", "--allow-cidr", "300.1.1.1/32"}, "not a CIDR"},
		{"cidr host bits", []string{"up", "--stack", "demo", "--allow-cidr", "198.51.100.7/24"}, "host bits"},
		{"ipv6 cidr", []string{"up", "--stack", "demo", "--allow-cidr", "2001:db8::/32"}, "IPv4"},
		{"bad region", []string{"up", "--stack", "demo", "--region", "mars-1", "--allow-cidr", allowCIDR}, "region"},
		{"bad instance type", []string{"up", "--stack", "demo", "--instance-type", "huge", "--allow-cidr", allowCIDR}, "instance type"},
		{"unknown instance type", []string{"up", "--stack", "demo", "--instance-type", "zz9.mega", "--allow-cidr", allowCIDR}, "does not exist"},
		{"bad mlflow version", []string{"up", "--stack", "demo", "--mlflow-version", "latest", "--allow-cidr", allowCIDR}, "exact version"},
		{"ttl without unit", []string{"up", "--stack", "demo", "--ttl", "4", "--allow-cidr", allowCIDR}, "--ttl"},
		{"negative ttl", []string{"up", "--stack", "demo", "--ttl", "-1h", "--allow-cidr", allowCIDR}, "--ttl"},
		{"ttl too long", []string{"up", "--stack", "demo", "--ttl", "400d", "--allow-cidr", allowCIDR}, "at most 90d"},
		{"bad output", []string{"up", "--stack", "demo", "--output", "yaml", "--allow-cidr", allowCIDR}, "--output"},
		{"sweep with stack", []string{"down", "--expired", "--stack", "demo"}, "--stack cannot"},
		{"older-than alone", []string{"down", "--stack", "demo", "--older-than", "2h"}, "--older-than goes with"},
		{"unknown flag", []string{"up", "--stack", "demo", "--bogus"}, "unknown flag --bogus (see `mlstack up --help`)"},
		{"positional arg", []string{"up", "demo"}, "unexpected argument"},
		{"unknown command", []string{"upp"}, "unknown command"},
		{"unwritable state dir", []string{"up", "--stack", "demo", "--allow-cidr", allowCIDR, "--state-dir", "/dev/null/x"}, "not writable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.rec.reset()
			args := tc.args
			if !contains(args, "--state-dir") {
				args = append(args, "--state-dir", e.stateDir)
			}
			res := e.mlstack(args...)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr %q", res.code, res.stderr)
			}
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "mlstack: ") || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr %q: want one line mentioning %q", res.stderr, tc.want)
			}
			if m := e.rec.mutating(); len(m) > 0 {
				t.Errorf("bad input made mutating calls: %+v", m)
			}
		})
	}
	e.assertNothingLeft()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestMissingCredentials: no credentials is a usage error before any call.
func TestMissingCredentials(t *testing.T) {
	e := newEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	res := e.mlstack(append([]string{"up", "--allow-cidr", allowCIDR}, e.stackFlags("demo")...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "credentials") {
		t.Fatalf("exit %d, stderr %q: want a usage error about credentials", res.code, res.stderr)
	}
	if n := len(e.rec.calls()); n != 0 {
		t.Errorf("made %d AWS calls without credentials", n)
	}
}

// TestDryRunChangesNothing: --dry-run prints the plan and makes no mutating call.
func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	res := e.ok(append([]string{"up", "--dry-run", "--allow-cidr", allowCIDR}, e.stackFlags("plan")...)...)
	for _, want := range []string{"(plan) would create IAM user mlstack-plan", "(plan) would create S3 bucket mlstack-plan-123456789012-eu-west-3-an",
		"(plan) would launch instance mlstack-plan from " + wantAMI, "tcp 5000 from " + allowCIDR} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, res.stdout)
		}
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("dry run made mutating calls: %+v", m)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "plan")); !os.IsNotExist(err) {
		t.Errorf("dry run wrote local state")
	}
	e.assertNothingLeft()
}

// TestForeignLookAlikes: a same-named resource without the stack tag makes
// up fail before anything is created, and down leaves it alone.
func TestForeignLookAlikes(t *testing.T) {
	tests := []struct {
		name    string
		create  func(t *testing.T, e *env)
		want    string // in up's error
		remains string // what the leak check must still find
	}{
		{"bucket", func(t *testing.T, e *env) { createBucket(t, e, "mlstack-twin-123456789012-eu-west-3") },
			`S3 bucket "mlstack-twin-123456789012-eu-west-3"`, "bucket mlstack-twin-123456789012-eu-west-3"},
		{"security group", func(t *testing.T, e *env) {
			_, err := e.ec2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
				GroupName: aws.String("mlstack-twin"), Description: aws.String("not mlstack's"),
			})
			must(t, err)
		}, `security group "mlstack-twin`, "security-group mlstack-twin"},
		{"iam user", func(t *testing.T, e *env) {
			_, err := e.iam.CreateUser(context.Background(), &iam.CreateUserInput{UserName: aws.String("mlstack-twin")})
			must(t, err)
		}, `IAM user "mlstack-twin"`, "iam-user mlstack-twin"},
		{"iam role", func(t *testing.T, e *env) {
			_, err := e.iam.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("mlstack-twin-server"),
				AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
			must(t, err)
		}, `IAM role "mlstack-twin-server"`, "iam-role mlstack-twin-server"},
		{"tagged for another stack", func(t *testing.T, e *env) {
			_, err := e.ec2.CreateKeyPair(context.Background(), &ec2.CreateKeyPairInput{KeyName: aws.String("mlstack-twin"),
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeKeyPair,
					Tags: []ec2types.Tag{{Key: aws.String("mlstack:stack"), Value: aws.String("other")}}}}})
			must(t, err)
		}, `key pair "mlstack-twin"`, "key-pair mlstack-twin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.create(t, e)
			before := e.everything()
			e.rec.reset()
			res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("twin")...)...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "not tagged mlstack:stack=twin") {
				t.Fatalf("up: exit %d, stderr %q; want a failure naming %s", res.code, res.stderr, tc.want)
			}
			if m := e.rec.mutating(); len(m) > 0 {
				t.Errorf("up made mutating calls before refusing: %+v", m)
			}
			e.ok(append([]string{"down", "--yes"}, e.stackFlags("twin")...)...)
			after := e.everything()
			if strings.Join(before, "|") != strings.Join(after, "|") {
				t.Errorf("foreign resources changed:\nbefore %v\nafter  %v", before, after)
			}
			e.assertNothingLeft(tc.remains)
		})
	}
}

// TestDownRefusesWithoutYes: with no terminal and no --yes, down deletes nothing.
func TestDownRefusesWithoutYes(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("keep")...)...)
	before := e.everything()
	e.rec.reset()
	res := e.mlstack(append([]string{"down"}, e.stackFlags("keep")...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "--yes") {
		t.Fatalf("down without --yes: exit %d, stderr %q", res.code, res.stderr)
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("down without --yes made mutating calls: %+v", m)
	}
	if after := e.everything(); strings.Join(before, "|") != strings.Join(after, "|") {
		t.Errorf("resources changed: %v → %v", before, after)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("keep")...)...)
	e.assertNothingLeft()
}

// TestDownFromFreshMachine: down finds the stack by tag and name with no
// local state at all, and empties a versioned artifact bucket: every object
// version, every delete marker, and an unfinished multipart upload, which
// it aborts (its parts bill until then).
func TestDownFromFreshMachine(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("ci")...)...)
	bucket := "mlstack-ci-123456789012-eu-west-3-an"
	uploadKey := fillVersionedBucket(t, e, bucket)

	fresh := t.TempDir()
	e.rec.reset()
	e.ok("down", "--yes", "--stack", "ci", "--state-dir", fresh)
	// moto, unlike S3, deletes a bucket that still has an unfinished upload,
	// so the bucket being gone does not prove the abort: the call does.
	aborted := false
	for _, c := range e.rec.calls() {
		aborted = aborted || c.Service == "s3" && c.Action == "DELETE uploadId" && c.Path == "/"+bucket+"/"+uploadKey
	}
	if !aborted {
		t.Errorf("down did not abort the unfinished upload of %s; calls: %+v", uploadKey, e.rec.calls())
	}
	e.assertNothingLeft()
}

// fillVersionedBucket turns versioning on and leaves in the bucket two
// versions of one object under a delete marker, a live object, and an
// unfinished multipart upload with one part, whose key it returns. It
// proves the setup is what it says: moto refuses to delete a bucket that
// holds any version or delete marker.
func fillVersionedBucket(t *testing.T, e *env, bucket string) string {
	t.Helper()
	ctx := context.Background()
	_, err := e.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	must(t, err)
	for _, o := range []struct{ key, body string }{{"runs/1/model.pkl", "v1"}, {"runs/1/model.pkl", "v2"}, {"runs/2/model.pkl", "live"}} {
		_, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: strings.NewReader(o.body)})
		must(t, err)
	}
	_, err = e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("runs/1/model.pkl")})
	must(t, err)
	const uploadKey = "runs/3/big.bin"
	mp, err := e.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(uploadKey)})
	must(t, err)
	_, err = e.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(uploadKey), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader(strings.Repeat("x", 1024))})
	must(t, err)

	// runs/: the bucket also holds the instance's install lock (bootstrap/).
	vers, err := e.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("runs/")})
	must(t, err)
	ups, err := e.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	must(t, err)
	if len(vers.Versions) != 3 || len(vers.DeleteMarkers) != 1 || len(ups.Uploads) != 1 {
		t.Fatalf("setup: %d versions, %d delete markers, %d uploads; want 3, 1, 1", len(vers.Versions), len(vers.DeleteMarkers), len(ups.Uploads))
	}
	return uploadKey
}

// TestUpConverges: drift on a stack's own resources is repaired by up with
// only the calls needed.
func TestUpConverges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	flags := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("drift")...)
	e.ok(flags...)
	g := stackSGNamed(t, e, "mlstack-drift")
	// Someone opened ssh to the world and removed encryption.
	_, err := e.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	must(t, err)
	_, err = e.s3.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: aws.String("mlstack-drift-123456789012-eu-west-3-an")})
	must(t, err)

	e.rec.reset()
	// A changed CIDR list is converged too.
	flags2 := append([]string{"up", "--no-wait", "--allow-cidr", "203.0.113.0/24"}, e.stackFlags("drift")...)
	e.ok(flags2...)
	var muts []string
	for _, c := range e.rec.mutating() {
		if c.Service == "s3" {
			muts = append(muts, "s3 "+c.Method)
		} else {
			muts = append(muts, c.Action)
		}
	}
	want := "AuthorizeSecurityGroupIngress,RevokeSecurityGroupIngress,s3 PUT"
	if got := strings.Join(sorted(muts), ","); got != want {
		t.Errorf("converging made %s, want %s", got, want)
	}
	g = stackSGNamed(t, e, "mlstack-drift")
	if len(g.IpPermissions) != 1 || aws.ToInt32(g.IpPermissions[0].FromPort) != 5000 || len(g.IpPermissions[0].IpRanges) != 1 ||
		aws.ToString(g.IpPermissions[0].IpRanges[0].CidrIp) != "203.0.113.0/24" {
		t.Errorf("ingress after converge: %+v", g.IpPermissions)
	}
	if _, err := e.s3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("mlstack-drift-123456789012-eu-west-3-an")}); err != nil {
		t.Errorf("encryption not restored: %v", err)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("drift")...)...)
	e.assertNothingLeft()
}

func stackSGNamed(t *testing.T, e *env, name string) ec2types.SecurityGroup {
	t.Helper()
	out, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{name}},
	}})
	must(t, err)
	if len(out.SecurityGroups) != 1 {
		t.Fatalf("want one security group %s, got %d", name, len(out.SecurityGroups))
	}
	return out.SecurityGroups[0]
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestStateOfAnotherAccountRefused: a state folder made for another account
// or region is detected and left as it is.
func TestStateOfAnotherAccountRefused(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.stateDir, "other")
	must(t, os.MkdirAll(dir, 0o700))
	orig := []byte(`{"stack":"other","account":"999999999999","region":"us-west-2","mlflow_username":"admin","mlflow_password":"keep-me-please-1","flask_secret_key":"keep-me-too-please-2","ssh_public_key":""}`)
	must(t, os.WriteFile(filepath.Join(dir, "state.json"), orig, 0o600))
	for _, cmd := range [][]string{{"up", "--no-wait", "--allow-cidr", allowCIDR}, {"down", "--yes"}} {
		res := e.mlstack(append(cmd, e.stackFlags("other")...)...)
		if res.code != 2 || !strings.Contains(res.stderr, "999999999999") {
			t.Errorf("%s: exit %d, stderr %q: want a usage error naming the other account", cmd[0], res.code, res.stderr)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "state.json"))
	must(t, err)
	if string(got) != string(orig) {
		t.Error("the other account's state was changed")
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("mutating calls: %+v", m)
	}
	e.assertNothingLeft()
}

// TestPerServiceEndpoints: AWS_ENDPOINT_URL_<SERVICE> work as in the SDK;
// with only the S3 one set, the env file still names it for MLflow.
func TestPerServiceEndpoints(t *testing.T) {
	e := newEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens there
	for _, svc := range []string{"EC2", "IAM", "STS", "S3", "SSM", "RDS"} {
		t.Setenv("AWS_ENDPOINT_URL_"+svc, e.rec.srv.URL)
	}
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("svc")...)...)
	env := e.mlstack(append([]string{"env"}, e.stackFlags("svc")...)...)
	if !strings.Contains(env.stdout, "export MLFLOW_S3_ENDPOINT_URL='"+e.rec.srv.URL+"'") {
		t.Error("env lacks the S3 endpoint override")
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("svc")...)...)
	e.assertNothingLeft()
}

// TestDownAsksOnTerminal: without --yes, down asks on a terminal; "n"
// deletes nothing, "y" deletes the stack. script(1) provides the terminal.
func TestDownAsksOnTerminal(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("ask")...)...)
	before := e.everything()
	answer := func(reply string) (int, string) {
		return answerOnTerminal(t, reply, append([]string{"down"}, e.stackFlags("ask")...)...)
	}
	code, out := answer("n")
	if code != 2 || !strings.Contains(out, "Delete stack ask") || !strings.Contains(out, "not confirmed") {
		t.Fatalf("answer n: exit %d\n%s", code, out)
	}
	if after := e.everything(); strings.Join(before, "|") != strings.Join(after, "|") {
		t.Fatal("answering n deleted something")
	}
	if code, out := answer("y"); code != 0 || !strings.Contains(out, "is gone") {
		t.Fatalf("answer y: exit %d\n%s", code, out)
	}
	e.assertNothingLeft()
}
