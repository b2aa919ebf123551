package main

// Real AWS behaviour that moto lacks, modelled by the proxy's AWS-like
// layer (awslike_test.go), each case through the CLI and ending with the
// leak check.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/mlstack/mlstack/provision/server"
)

func creditsOf(t *testing.T, e *env, id string) string {
	t.Helper()
	out, err := e.ec2.DescribeInstanceCreditSpecifications(context.Background(), &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: []string{id}})
	must(t, err)
	if len(out.InstanceCreditSpecifications) != 1 {
		return ""
	}
	return aws.ToString(out.InstanceCreditSpecifications[0].CpuCredits)
}

// TestInstanceTypeFallback: where t2.micro is not offered, or the free plan
// refuses it, the default becomes t3.micro with standard credits, said in
// one line; an explicit type never falls back.
func TestInstanceTypeFallback(t *testing.T) {
	for _, c := range []struct {
		name, say, injected string
		knob                func(a *awsLike)
	}{
		{"region without t2", "t2.micro is not offered in eu-west-3: launching t3.micro", "", func(a *awsLike) { a.plan.NoT2 = true }},
		{"free plan", "t2.micro is not eligible for this account's free plan: launching t3.micro", "free plan refusal", func(a *awsLike) { a.plan.FreeTier = awsmodel.FreeTierTypes }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.rec.aws.set(c.knob)
			res := e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("fb")...)...)
			if strings.Count(res.stderr, c.say) != 1 {
				t.Errorf("progress does not say once %q:\n%s", c.say, res.stderr)
			}
			inst := stackInstance(t, e, "fb")
			if inst.InstanceType != "t3.micro" || creditsOf(t, e, aws.ToString(inst.InstanceId)) != "standard" {
				t.Errorf("launched %s with %q credits, want t3.micro with standard", inst.InstanceType, creditsOf(t, e, aws.ToString(inst.InstanceId)))
			}
			if c.injected != "" && e.rec.aws.count(c.injected) != 1 {
				t.Errorf("%q answered %d times", c.injected, e.rec.aws.count(c.injected))
			}
			e.rec.reset()
			e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("fb")...)...)
			if m := e.rec.mutating(); len(m) > 0 && strings.Contains(fmt.Sprint(m), "RunInstances") {
				t.Errorf("re-up launched again: %v", m)
			}
			e.ok(append([]string{"down", "--yes"}, e.stackFlags("fb")...)...)
			e.assertNothingLeft()
		})
	}
}

// TestRegionWithoutT2: in eu-north-1 EC2 has no t2 at all (it answers
// DescribeInstanceTypes with InvalidInstanceType, moto does not: the proxy
// answers from the model's offering data). The default up launches
// t3.micro with standard credits and says why; an explicit t2.micro is a
// usage error before anything is created.
func TestRegionWithoutT2(t *testing.T) {
	e := newEnv(t)
	const region = "eu-north-1"
	t.Setenv("AWS_REGION", region)
	opts := e.ec2.Options()
	opts.Region = region
	e.ec2 = ec2.New(opts) // the checks below and the leak check look there
	res := e.mlstack(append([]string{"up", "--no-wait", "--instance-type", "t2.micro", "--allow-cidr", allowCIDR}, e.stackFlags("nt")...)...)
	if res.code != 2 || !strings.Contains(res.stderr, `instance type "t2.micro" does not exist in eu-north-1`) {
		t.Fatalf("explicit t2.micro: exit %d: %s", res.code, res.stderr)
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("mutating calls before the refusal: %v", m)
	}
	res = e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("nt")...)...)
	const say = "t2.micro is not offered in eu-north-1: launching t3.micro with standard CPU credits instead (bursts never bill beyond the hourly price)"
	if strings.Count(res.stderr, say) != 1 {
		t.Errorf("progress does not say once %q:\n%s", say, res.stderr)
	}
	inst := stackInstance(t, e, "nt")
	if id := aws.ToString(inst.InstanceId); inst.InstanceType != "t3.micro" || creditsOf(t, e, id) != "standard" {
		t.Errorf("launched %s with %q credits, want t3.micro with standard", inst.InstanceType, creditsOf(t, e, id))
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("nt")...)...)
	e.assertNothingLeft()
}

// TestExplicitInstanceTypeNeverFallsBack: not offered is a usage error
// before anything is created; refused by the free plan is a clear error
// that names the way out, and down removes what was created.
func TestExplicitInstanceTypeNeverFallsBack(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.plan.NoT2 = true })
	e.rec.reset()
	res := e.mlstack(append([]string{"up", "--no-wait", "--instance-type", "t2.micro", "--allow-cidr", allowCIDR}, e.stackFlags("ex")...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "instance type t2.micro is offered in no availability zone") {
		t.Fatalf("not offered: exit %d: %s", res.code, res.stderr)
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("mutating calls before the refusal: %v", m)
	}
	e.rec.aws.set(func(a *awsLike) { a.plan = awsmodel.Plan{FreeTier: awsmodel.FreeTierTypes} })
	res = e.mlstack(append([]string{"up", "--no-wait", "--instance-type", "t2.micro", "--allow-cidr", allowCIDR}, e.stackFlags("ex")...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "pass --instance-type t3.micro") || strings.Contains(res.stderr, "launching t3.micro") {
		t.Fatalf("free plan: exit %d: %s", res.code, res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("ex")...)...)
	e.assertNothingLeft()
}

// TestEventualConsistency: every new id is unknown to EC2 or S3 (a new
// instance profile to RunInstances) for its first uses; up retries exactly
// those answers, keeps the id RunInstances gave (the instance is not
// listed yet), and makes one of everything.
func TestEventualConsistency(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.consistency.For = 1 })
	flags := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("ec")...)
	e.ok(flags...)
	for _, what := range []string{"new group not found yet", "new keypair not found yet", "new bucket not found yet", "new profile not found yet", "new instance not listed yet"} {
		if e.rec.aws.count(what) == 0 {
			t.Errorf("%q never happened: the test did not exercise it", what)
		}
	}
	e.assertExactlyOne("ec")
	e.rec.reset()
	e.ok(flags...)
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("re-up made mutating calls: %v", m)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("ec")...)...)
	e.assertNothingLeft()
}

// TestBucketNameStillBusy: after down, S3 keeps the bucket's name for a
// while; the next up waits for it, says so once, and succeeds.
func TestBucketNameStillBusy(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.busyNames.For = 2 })
	flags := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("busy")...)
	e.ok(flags...)
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("busy")...)...)
	res := e.ok(flags...)
	if strings.Count(res.stderr, "S3 still holds the name") != 1 || e.rec.aws.count("bucket name busy") != 2 {
		t.Errorf("busy name answered %d times; progress:\n%s", e.rec.aws.count("bucket name busy"), res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("busy")...)...)
	e.assertNothingLeft()
}

// TestSubnetWithoutPublicIP: default subnets that map no public address;
// up asks for one on the interface, so the server is reachable.
func TestSubnetWithoutPublicIP(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.noPublicIP = true })
	res := e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("pub")...)...)
	if !strings.HasPrefix(strings.TrimSpace(res.stdout), "https://ec2-") {
		t.Errorf("tracking URI %q", res.stdout)
	}
	e.rec.aws.mu.Lock()
	private := len(e.rec.aws.private)
	e.rec.aws.mu.Unlock()
	if private != 0 {
		t.Error("the instance was launched without asking for a public address")
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("pub")...)...)
	e.assertNothingLeft()
}

// TestNoDefaultVPC: a clear error before any mutating call.
func TestNoDefaultVPC(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.noDefaultVPC = true })
	e.rec.reset()
	res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("novpc")...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "create-default-vpc") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("mutating calls: %v", m)
	}
	e.assertNothingLeft()
}

// TestOptInRegion: a region the account has not enabled says so.
func TestOptInRegion(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.optInRegion = "ap-east-2" })
	e.rec.reset()
	res := e.mlstack(append([]string{"up", "--no-wait", "--region", "ap-east-2", "--allow-cidr", allowCIDR}, e.stackFlags("optin")...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "region ap-east-2 is not enabled for account 123456789012") || strings.Contains(res.stderr, "log in") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("mutating calls: %v", m)
	}
	e.assertNothingLeft()
}

// TestShuttingDownInstance: after an interrupted down the instance is
// shutting down: up launches a new one instead of keeping it, and down
// waits for both, through states the SDK's waiter would give up on.
func TestShuttingDownInstance(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.terms.Slow, a.terms.Stale = 2, 1 })
	flags := append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("sd")...)
	e.ok(flags...)
	old := aws.ToString(stackInstance(t, e, "sd").InstanceId)
	viaProxy, _, _ := clients(t, e.rec.srv.URL, "test", "test")
	_, err := viaProxy.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{old}})
	must(t, err)
	// Past the pending phase: the instance now shows shutting-down.
	for range 1 {
		_, _ = viaProxy.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{old}})
	}
	res := e.ok(flags...)
	if !strings.Contains(res.stderr, "launching") {
		t.Fatalf("up kept the shutting-down instance:\n%s", res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("sd")...)...)
	if e.rec.aws.count("slow termination") != 2 {
		t.Errorf("slow terminations %d, want 2", e.rec.aws.count("slow termination"))
	}
	e.assertNothingLeft()
}

// TestDownRightAfterLaunch: the describe still shows pending, then
// shutting-down, for a terminated new instance; down waits it out.
func TestDownRightAfterLaunch(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.terms.Slow, a.terms.Stale = 1, 1 })
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("quick")...)...)
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("quick")...)...)
	e.assertNothingLeft()
}

// TestSessionTokenCleared: a caller with temporary credentials (a session
// token in the environment) exports the stack's long-term key: every
// format clears the token, a real boto3 client signs with the stack key
// alone, and check proves it from the same variables.
func TestSessionTokenCleared(t *testing.T) {
	e := newEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "ASIACALLERTEMPORARY1")
	t.Setenv("AWS_SESSION_TOKEN", "caller-session-token-from-sso")
	e.rec.aws.set(func(a *awsLike) { a.strictTokens = true })
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("tok")...)...)

	shell := e.ok(append([]string{"env"}, e.stackFlags("tok")...)...).stdout
	if !strings.HasPrefix(shell, "unset AWS_SESSION_TOKEN") {
		t.Errorf("shell format does not clear the token first:\n%s", shell)
	}
	boto3Put(t, "shell", "eval \"$(cat \"$ENVFILE\")\"", shell)
	js := e.ok(append([]string{"env", "--format", "json"}, e.stackFlags("tok")...)...).stdout
	var m map[string]string
	must(t, json.Unmarshal([]byte(js), &m))
	var exports strings.Builder
	for k, v := range m {
		fmt.Fprintf(&exports, "export %s=%s\n", k, shellQuote(v))
	}
	boto3Put(t, "json", ". \"$ENVFILE\"", exports.String())

	// A server that refuses at once: check's MLflow part fails fast, its S3
	// part signs with exactly what the user's environment holds.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := "http://" + l.Addr().String()
	l.Close()
	e.okWith(testhooks.Hooks{TrackingURI: closed}, append([]string{"creds", "rotate", "--skip-mlflow"}, e.stackFlags("tok")...)...)
	res := e.mlstack(append([]string{"check", "--timeout", "30s"}, e.stackFlags("tok")...)...)
	if !strings.Contains(res.stdout, "✓ S3 put with the scoped keys") || e.rec.aws.count("session token with a long-term key") != 0 {
		t.Errorf("check with a caller's session token (refused %d times):\n%s", e.rec.aws.count("session token with a long-term key"), res.stdout)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("tok")...)...)
	e.assertNothingLeft()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// boto3Put writes an object with a real boto3 client in a shell that has
// the caller's session token, after applying env (through apply).
func boto3Put(t *testing.T, what, apply, env string) {
	t.Helper()
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		// Fails in CI; elsewhere skips and fails the run with a banner.
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; boto3 lives in it; scripts/test.sh makes one)")
	}
	file := filepath.Join(t.TempDir(), "env")
	must(t, os.WriteFile(file, []byte(env), 0o600))
	py := `import boto3, os
s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"], region_name=os.environ["AWS_DEFAULT_REGION"])
s3.put_object(Bucket=os.environ["BUCKET"], Key="probe/from-boto3.txt", Body=b"x")
s3.delete_object(Bucket=os.environ["BUCKET"], Key="probe/from-boto3.txt")`
	script := "export AWS_SESSION_TOKEN=caller-session-token-from-sso; " + apply + "; exec \"$PY\" -c \"$CODE\""
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "ENVFILE=" + file, "PY=" + filepath.Join(venv, "bin", "python"),
		"CODE=" + py, "BUCKET=mlstack-tok-123456789012-eu-west-3-an"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: boto3 with the exported variables: %v\n%s", what, err, out)
	}
}

// TestDeleteUserWithAdminAdditions: an admin attached a managed policy,
// added the stack's user to a group and gave it a console login; down
// removes the user all the same, and leaves the policy and group alone.
func TestDeleteUserWithAdminAdditions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("adm")...)...)
	pol, err := e.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("team-read"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}`)})
	must(t, err)
	_, err = e.iam.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("data-team")})
	must(t, err)
	for _, step := range []func() error{
		func() error {
			_, err := e.iam.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("mlstack-adm"), PolicyArn: pol.Policy.Arn})
			return err
		},
		func() error {
			_, err := e.iam.AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: aws.String("mlstack-adm"), GroupName: aws.String("data-team")})
			return err
		},
		func() error {
			_, err := e.iam.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("mlstack-adm"), Password: aws.String("Console-Pass-1234!")})
			return err
		},
	} {
		must(t, step())
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("adm")...)...)
	if _, err := e.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("mlstack-adm")}); err == nil {
		t.Error("the stack's user is still there")
	}
	if _, err := e.iam.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("data-team")}); err != nil {
		t.Errorf("down removed the admin's group: %v", err)
	}
	_, err = e.iam.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String("data-team")})
	must(t, err)
	_, err = e.iam.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: pol.Policy.Arn})
	must(t, err)
	e.assertNothingLeft()
}

// TestProfileEndpoint: an endpoint_url in the profile (no AWS_ENDPOINT_URL)
// reaches the emulator, and clients get it as MLFLOW_S3_ENDPOINT_URL.
func TestProfileEndpoint(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "config")
	must(t, os.WriteFile(cfg, []byte("[profile emulator]\nregion = eu-west-3\nendpoint_url = "+e.rec.srv.URL+
		"\naws_access_key_id = test\naws_secret_access_key = test\n"), 0o600))
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_ENDPOINT_URL", "")
	os.Unsetenv("AWS_ENDPOINT_URL")
	t.Setenv("AWS_REGION", "")
	os.Unsetenv("AWS_REGION")
	flags := append([]string{"--profile", "emulator"}, e.stackFlags("prof")...)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	vars := sourceEnv(t, e.ok(append([]string{"env"}, e.stackFlags("prof")...)...).stdout)
	if vars["MLFLOW_S3_ENDPOINT_URL"] != e.rec.srv.URL {
		t.Errorf("MLFLOW_S3_ENDPOINT_URL = %q, want the profile's %q", vars["MLFLOW_S3_ENDPOINT_URL"], e.rec.srv.URL)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestHealthWaitSaysWhy: within the diagnosis delay (shortened here), a
// refused or dropped connection is named with what to do, as a command
// with the flags in use; the wait goes on until the timeout.
func TestHealthWaitSaysWhy(t *testing.T) {
	old := server.DiagnoseAfter
	server.DiagnoseAfter = 100 * time.Millisecond
	t.Cleanup(func() { server.DiagnoseAfter = old })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	refused := "http://" + l.Addr().String() + "/health"
	l.Close()
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGatewayTimeout) }))
	t.Cleanup(gateway.Close)
	for _, c := range []struct{ url, want, hint string }{
		{refused, "refuses connections: the instance is up but nothing listens", "mlstack logs --stack why"},
		{gateway.URL, "time out: packets are dropped", "--allow-cidr " + allowCIDR + ` --allow-cidr "$(curl -fsS https://checkip.amazonaws.com)/32"`},
	} {
		e := newEnv(t)
		e.publishAsServer("why")
		res := e.mlstackWith(testhooks.Hooks{HealthURL: c.url}, append([]string{"up", "--timeout", "3s", "--allow-cidr", allowCIDR}, e.stackFlags("why")...)...)
		if res.code != 1 || strings.Count(res.stderr, c.want) != 1 || !strings.Contains(res.stderr, c.hint) || !strings.Contains(res.stderr, "--state-dir "+e.stateDir) {
			t.Errorf("exit %d, want the diagnosis %q with %q once:\n%s", res.code, c.want, c.hint, res.stderr)
		}
		e.ok(append([]string{"down", "--yes"}, e.stackFlags("why")...)...)
		e.assertNothingLeft()
	}
}

// TestBucketWithoutNamespaceOrTagResource: where S3 refuses the
// account-regional namespace header, and for a caller without
// s3:TagResource, up makes the bucket under its global name, bare, tags it
// next, and says both; down removes it.
func TestBucketWithoutNamespaceOrTagResource(t *testing.T) {
	e := newEnv(t)
	e.rec.aws.set(func(a *awsLike) { a.noRegionalNamespace, a.noTagResource = true, true })
	res := e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("ns")...)...)
	global := "mlstack-ns-123456789012-" + testRegion
	for _, say := range []string{"S3 refuses the account-regional bucket namespace here (NotImplemented): creating the bucket as " + global,
		"creating S3 bucket " + global + " without its tags (the caller may not s3:TagResource at creation); tagging it next"} {
		if !strings.Contains(res.stderr, say) {
			t.Errorf("progress does not say %q:\n%s", say, res.stderr)
		}
	}
	for _, what := range []string{"regional namespace refused", "tags at creation denied"} {
		if e.rec.aws.count(what) != 1 {
			t.Errorf("%q answered %d times", what, e.rec.aws.count(what))
		}
	}
	tags, err := e.s3.GetBucketTagging(context.Background(), &s3.GetBucketTaggingInput{Bucket: aws.String(global)})
	must(t, err)
	if !slices.ContainsFunc(tags.TagSet, func(tag s3types.Tag) bool { return aws.ToString(tag.Value) == "ns" }) {
		t.Errorf("bucket %s tags %v", global, tags.TagSet)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("ns")...)...)
	e.assertNothingLeft()
}
