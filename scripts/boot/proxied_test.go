//go:build boottest

package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// phaseProxied: `mlstack up --artifacts proxied` on the live stack. moto
// cannot reboot the container, so the test restarts mlflow.service once
// the mode is in SSM, as the reboot up asks EC2 for would; up waits for
// the server to publish again and answer. Then: the key is gone from IAM
// and the state, the env file has no AWS variable, the server's journal
// names the proxied root, the client with exactly that env file logs and
// reads back an artifact through the server, which stores it in the
// bucket; bob may read alice's artifact through the server, not delete
// it; `mlstack check` passes the proxied way.
func (b *bootTest) phaseProxied(t *testing.T) {
	from := b.rec.since()
	b.launch(t, "up", "--allow-cidr", "127.0.0.1/32", "--timeout", "5m", "--user", "alice",
		"--mlflow-version", b.mlflow, "--artifacts", "proxied", "--output", "json")
	b.waitParam(t, "artifacts", "proxied")
	b.must(t, "systemctl", "restart", "mlflow.service")
	b.waitUp(t)
	if s := b.upResult(t); s.Artifacts != "proxied" {
		t.Fatalf("up --artifacts proxied: the stack's artifacts are %q", s.Artifacts)
	}
	if len(b.rec.find(from, "RebootInstances", "InstanceId.1", b.inst.id)) != 1 {
		t.Fatalf("up asked EC2 for no reboot of %s into the new mode", b.inst.id)
	}
	b.journalHas(t, "mlflow.service", "mlstack-keys: artifacts proxied: default artifact root mlflow-artifacts:/", "the proxied mode")
	b.checkNoKey(t)
	vars := b.envFile(t, "env-proxied.sh")
	want := []string{"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME"}
	if got := sortedKeys(vars); !slices.Equal(got, want) {
		t.Fatalf("mlstack env with proxied artifacts prints %v, want %v", got, want)
	}
	var facts struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	b.python(t, "env-proxied.sh", "proxied", &facts)
	key := "artifacts/" + strings.TrimPrefix(facts.ArtifactURI, "mlflow-artifacts:/") + "/proxied.txt"
	b.hasObject(t, "artifacts/", key)
	// Through the server every artifact request is checked: bob (EDIT on
	// alice's experiment) may read alice's artifact, not delete it.
	bob := b.passwordOf(t, "bob")
	api := "https://" + b.inst.dns + ":5000/api/2.0/mlflow-artifacts/artifacts/" + strings.TrimPrefix(key, "artifacts/")
	b.expect(t, "bob reads alice's proxied artifact", []int{http.StatusOK}, http.MethodGet, api, "bob", bob, "")
	b.expect(t, "bob deletes alice's proxied artifact", []int{http.StatusForbidden}, http.MethodDelete, api, "bob", bob, "")
	b.checkProxiedCheck(t)
}

// waitParam waits until the stack's SSM parameter name holds value.
func (b *bootTest) waitParam(t *testing.T, name, value string) {
	t.Helper()
	c := ssm.NewFromConfig(b.aws)
	full := "/mlstack/" + bootStack + "/" + name
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: &full})
		var nf *ssmtypes.ParameterNotFound
		if err != nil && !errors.As(err, &nf) {
			t.Fatalf("reading %s: %v", full, err)
		}
		if err == nil && aws.ToString(out.Parameter.Value) == value {
			return
		}
		if !b.up.running() {
			b.waitUp(t)
			t.Fatalf("mlstack up exited before %s was %s", full, value)
		}
	}
	t.Fatalf("%s never became %s", full, value)
}

// checkNoKey: with proxied artifacts the stack's IAM user has no access
// key, and the state holds none.
func (b *bootTest) checkNoKey(t *testing.T) {
	out, err := iam.NewFromConfig(b.aws).ListAccessKeys(context.Background(),
		&iam.ListAccessKeysInput{UserName: aws.String("mlstack-" + bootStack)})
	if err != nil || len(out.AccessKeyMetadata) != 0 {
		t.Fatalf("the stack's IAM user still has an access key (%v)", err)
	}
	state, err := os.ReadFile(filepath.Join(b.state, bootStack, "state.json"))
	if err != nil || strings.Contains(string(state), `"access_key_id"`) {
		t.Fatalf("the state still holds an access key (%v)", err)
	}
}

// passwordOf is a user's MLflow password, from `mlstack env --user`.
func (b *bootTest) passwordOf(t *testing.T, user string) string {
	t.Helper()
	vars := b.envFile(t, "env-"+user+".sh", "--user", user)
	return vars["MLFLOW_TRACKING_PASSWORD"]
}

// checkProxiedCheck: `mlstack check` passes, and its artifact went through
// the server (it holds no AWS key now): the server's access log in the
// journal has its upload and its removal of mlstack-check.txt, answered
// 200.
func (b *bootTest) checkProxiedCheck(t *testing.T) {
	through := func(method string) int {
		return countFunc(strings.Split(b.journal(t, "mlflow.service"), "\n"), func(l string) bool {
			return strings.Contains(l, `"`+method+` /api/2.0/mlflow-artifacts/artifacts/`) &&
				strings.Contains(l, `/mlstack-check.txt HTTP/1.1" 200`)
		})
	}
	puts, deletes := through("PUT"), through("DELETE")
	b.mlstack(t, "check")
	if p, d := through("PUT")-puts, through("DELETE")-deletes; p != 1 || d != 1 {
		t.Fatalf("mlstack check stored %d and removed %d artifacts through the server, want 1 and 1", p, d)
	}
}

func countFunc(s []string, f func(string) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}
