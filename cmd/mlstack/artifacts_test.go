package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/mlstack/mlstack/internal/testhooks"
)

// restartOnReboot plays the stack's server at a reboot: it starts again,
// reads the artifacts mode and publishes its keys, as the bootstrap does.
func (e *env) restartOnReboot(stack string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	go func() {
		seen := 0
		for ctx.Err() == nil {
			n := 0
			for _, c := range e.rec.calls() {
				if c.Action == "RebootInstances" {
					n++
				}
			}
			if n > seen {
				if inst, ok := e.runningInstance(ctx, stack); ok {
					e.publish(ctx, stack, inst)
				}
			}
			seen = n
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// rebootCount is how many RebootInstances calls mlstack made.
func (e *env) rebootCount() int {
	n := 0
	for _, c := range e.rec.calls() {
		if c.Action == "RebootInstances" {
			n++
		}
	}
	return n
}

// accessKeys are the stack user's access key ids in IAM.
func (e *env) accessKeys(stack string) []string {
	e.t.Helper()
	out, err := e.iam.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String("mlstack-" + stack)})
	must(e.t, err)
	var ids []string
	for _, k := range out.AccessKeyMetadata {
		ids = append(ids, aws.ToString(k.AccessKeyId))
	}
	return ids
}

// modeParam is the stack's artifacts parameter in SSM ("" when absent).
func (e *env) modeParam(stack string) string {
	e.t.Helper()
	out, err := e.ssmAs("test", "test", "").GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/mlstack/" + stack + "/artifacts")})
	if err != nil {
		return ""
	}
	return aws.ToString(out.Parameter.Value)
}

// stateFile is state.json as it is, keys or none.
func stateFile(t *testing.T, dir string) localState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	must(t, err)
	var s localState
	must(t, json.Unmarshal(b, &s))
	return s
}

// noAWSInEnv: every env format of the stack leaves AWS alone entirely.
func noAWSInEnv(t *testing.T, e *env, flags []string) {
	t.Helper()
	for _, format := range []string{"shell", "dotenv", "json", "github"} {
		res := e.ok(append([]string{"env", "--format", format}, flags...)...)
		if strings.Contains(res.stdout, "AWS_") || strings.Contains(res.stdout, "MLFLOW_S3_ENDPOINT_URL") || !strings.Contains(res.stdout, "MLFLOW_TRACKING_PASSWORD") {
			t.Errorf("env --format %s of a proxied stack:\n%s", format, res.stdout)
		}
	}
}

// TestArtifactsProxied: `up --artifacts proxied` makes no access key and
// an env file with no AWS variable; `mlstack check` with that env file
// puts, reads and deletes an artifact through a real MLflow server that
// stores it in the bucket; a live stack switches to direct and back by a
// reboot, with the key made and deleted; creds rotate has no key to
// rotate; down leaves nothing. A mode up does not know is refused first.
func TestArtifactsProxied(t *testing.T) {
	e := newEnv(t)
	const stack = "prox"
	flags := e.stackFlags(stack)
	dir := filepath.Join(e.stateDir, stack)
	up := func(extra ...string) result {
		return e.mlstack(append(append([]string{"up", "--allow-cidr", allowCIDR}, flags...), extra...)...)
	}
	if res := up("--artifacts", "s3", "--no-wait"); res.code != 2 || !strings.Contains(res.stderr, "use proxied") || len(e.rec.mutating()) != 0 {
		t.Fatalf("--artifacts s3: exit %d, %d mutating calls\n%s", res.code, len(e.rec.mutating()), res.stderr)
	}

	e.publishAsServer(stack)
	if res := up("--artifacts", "proxied", "--no-wait"); res.code != 0 {
		t.Fatalf("up --artifacts proxied: exit %d\n%s", res.code, res.stderr)
	}
	st := stateFile(t, dir)
	if keys := e.accessKeys(stack); len(keys) != 0 || st.AccessKeyID != "" || st.SecretAccessKey != "" || e.modeParam(stack) != "proxied" {
		t.Fatalf("proxied stack: keys %v in IAM, %q saved, mode %q", keys, st.AccessKeyID, e.modeParam(stack))
	}
	noAWSInEnv(t, e, flags)

	// The server: real MLflow serving artifacts into the stack bucket, as
	// the instance's unit has it (moto's admin key stands in for the role).
	server := mlflowServerWith(t, st.MLflowPassword, []string{"--serve-artifacts",
		"--artifacts-destination", "s3://mlstack-prox-123456789012-eu-west-3-an/artifacts", "--default-artifact-root", "mlflow-artifacts:/"},
		[]string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=" + testRegion, "MLFLOW_S3_ENDPOINT_URL=" + e.moto})
	at := testhooks.Hooks{HealthURL: server + "/health", TrackingURI: server}
	e.okWith(at, append([]string{"up", "--allow-cidr", allowCIDR}, flags...)...) // makes the env file's user there
	if n := e.rebootCount(); n != 0 {
		t.Errorf("up without --artifacts rebooted %d times", n)
	}
	checkThroughServer(t, e, flags, dir, server)

	e.rec.reset()
	dry := e.ok(append([]string{"up", "--dry-run", "--allow-cidr", allowCIDR, "--artifacts", "direct"}, flags...)...)
	for _, want := range []string{"would create an access key for mlstack-prox", "would set the artifacts mode to direct",
		"would reboot instance i-"} {
		if !strings.Contains(dry.stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, dry.stdout)
		}
	}
	if m := e.rec.mutating(); len(m) != 0 {
		t.Errorf("dry run made mutating calls %v", m)
	}

	// A live switch: the server reboots and publishes again; up waits for that.
	e.restartOnReboot(stack)
	res := e.okWith(at, append([]string{"up", "--allow-cidr", allowCIDR, "--artifacts", "direct"}, flags...)...)
	st = stateFile(t, dir)
	if keys := e.accessKeys(stack); len(keys) != 1 || keys[0] != st.AccessKeyID || e.modeParam(stack) != "direct" || e.rebootCount() != 1 {
		t.Fatalf("switch to direct: keys %v in IAM, %q saved, mode %q, %d reboots", keys, st.AccessKeyID, e.modeParam(stack), e.rebootCount())
	}
	if !strings.Contains(res.stderr, "keep their mlflow-artifacts:/ location") {
		t.Errorf("the switch does not say what happens to earlier experiments:\n%s", res.stderr)
	}
	if vars := sourceEnv(t, e.ok(append([]string{"env"}, flags...)...).stdout); vars["AWS_ACCESS_KEY_ID"] != st.AccessKeyID || vars["AWS_SECRET_ACCESS_KEY"] == "" {
		t.Error("direct env file lacks the new key")
	}

	e.rec.reset()
	res = e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR, "--artifacts", "proxied"}, flags...)...)
	if keys := e.accessKeys(stack); len(keys) != 0 || stateFile(t, dir).AccessKeyID != "" || e.rebootCount() != 1 ||
		!strings.Contains(res.stderr, "keep their s3:// artifact location") {
		t.Errorf("switch back to proxied: keys %v, %d reboots\n%s", keys, e.rebootCount(), res.stderr)
	}
	noAWSInEnv(t, e, flags)
	if doc := decodeStack(t, e.ok(append([]string{"status", "--output", "json"}, flags...)...).stdout); doc.Artifacts == nil || *doc.Artifacts != "proxied" {
		t.Errorf("status artifacts %v", doc.Artifacts)
	}

	// creds rotate: nothing of AWS to rotate; the MLflow password does.
	if res := e.mlstack(append([]string{"creds", "rotate", "--skip-mlflow"}, flags...)...); res.code != 2 || !strings.Contains(res.stderr, "nothing to do") {
		t.Errorf("creds rotate --skip-mlflow on a proxied stack: exit %d\n%s", res.code, res.stderr)
	}
	e.rec.reset()
	before := stateFile(t, dir).MLflowPassword
	e.okWith(at, append([]string{"creds", "rotate"}, flags...)...)
	for _, c := range e.rec.calls() {
		if c.Action == "CreateAccessKey" {
			t.Error("creds rotate made an access key for a proxied stack")
		}
	}
	if after := stateFile(t, dir); after.MLflowPassword == before || after.AccessKeyID != "" {
		t.Error("creds rotate on a proxied stack: the admin password did not change, or a key appeared")
	}
	noAWSInEnv(t, e, flags)

	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// checkThroughServer runs `mlstack check` with the env file pointed at the
// local server (plain HTTP), as a client without AWS variables.
func checkThroughServer(t *testing.T, e *env, flags []string, dir, server string) {
	t.Helper()
	envPath := filepath.Join(dir, "env")
	b, err := os.ReadFile(envPath)
	must(t, err)
	uri := sourceEnv(t, string(b))["MLFLOW_TRACKING_URI"]
	must(t, os.WriteFile(envPath, []byte(strings.ReplaceAll(string(b), uri, server)), 0o600))
	defer func() { must(t, os.WriteFile(envPath, b, 0o600)) }()
	res := e.mlstack(append([]string{"check"}, flags...)...)
	for _, want := range []string{"✓ experiment artifacts go through the server: mlflow-artifacts:/",
		"✓ artifact upload through the server", "✓ artifact download returns what was uploaded", "✓ artifact delete through the server",
		"all 11 checks passed"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("check lacks %q (exit %d):\n%s%s", want, res.code, res.stdout, res.stderr)
		}
	}
	if strings.Contains(res.stdout, "S3 put") {
		t.Errorf("check of a proxied stack used S3 directly:\n%s", res.stdout)
	}
}
