package provision

import (
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/local/envfile"
)

// TestDeleteUserWithAdminAdditions: managed policies, groups and a console
// login an admin added to the stack's user go with it.
func TestDeleteUserWithAdminAdditions(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.Mu.Lock()
	u := f.Users["mlstack-demo"]
	u.Attached, u.Groups, u.Login = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}, []string{"data-team"}, true
	f.Mu.Unlock()
	if err := Down(f.Ctx(), DownOptions{Stack: Stack{Name: "demo", StateDir: dir}, Yes: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.Owns("demo"); len(got) != 0 {
		t.Errorf("left %v", got)
	}
	for _, op := range []string{"IAM.DetachUserPolicy", "IAM.RemoveUserFromGroup", "IAM.DeleteLoginProfile"} {
		if f.Count(op) != 1 {
			t.Errorf("%s called %d times", op, f.Count(op))
		}
	}
}

// TestConsoleOutputLatest: the latest output where EC2 keeps it, else the
// published buffer.
func TestConsoleOutputLatest(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	id := f.LiveInstances()[0]
	f.Mu.Lock()
	f.Console[id] = "boot\r\n"
	f.Mu.Unlock()
	text, err := cloud.ConsoleOutput(f.Ctx(), f, id)
	if err != nil || text != "boot\n" || f.Count("EC2.GetConsoleOutput") != 2 {
		t.Fatalf("t2 (Xen): %q, %v after %d calls", text, err, f.Count("EC2.GetConsoleOutput"))
	}
	f.Mu.Lock()
	f.Instance(id).Inst.InstanceType = ec2types.InstanceTypeT3Micro
	f.Mu.Unlock()
	f.ResetCalls()
	if text, err := cloud.ConsoleOutput(f.Ctx(), f, id); err != nil || text != "boot\n" || f.Count("EC2.GetConsoleOutput") != 1 {
		t.Fatalf("t3 (Nitro): %q, %v after %d calls", text, err, f.Count("EC2.GetConsoleOutput"))
	}
}

// TestClientEnv: the environment check signs with is the caller's with the
// env file applied: a caller's session token is gone when the file clears it.
func TestClientEnv(t *testing.T) {
	t.Parallel()
	caller := []string{"AWS_SESSION_TOKEN=stale", "AWS_ACCESS_KEY_ID=ASIACALLER", "HOME=/root", "MLFLOW_TRACKING_TOKEN=t"}
	sec := local.Secrets{MLflowUser: "admin", MLflowPassword: "pw", AccessKeyID: "AKIASTACK", SecretAccessKey: "s",
		EnvUser: "alice", Users: map[string]string{"alice": "alice-pw"}}
	file := envVars(&sec, "https://x:5000", "/s/server.crt", "eu-west-3", "")
	env := clientEnv(caller, file)
	if _, ok := env["AWS_SESSION_TOKEN"]; ok || env["AWS_ACCESS_KEY_ID"] != "AKIASTACK" || env["HOME"] != "/root" {
		t.Errorf("client env %v", env)
	}
	without := clientEnv(caller, []envfile.Var{{Name: "AWS_ACCESS_KEY_ID", Value: "AKIASTACK"}})
	if without["AWS_SESSION_TOKEN"] != "stale" {
		t.Error("a file that does not clear the token must leave it (check would then fail, as the user would)")
	}
	sh, err := envfile.FormatShell(file)
	if err != nil || !strings.HasPrefix(string(sh), "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION MLFLOW_TRACKING_TOKEN\n") {
		t.Errorf("shell env file: %q, %v", sh, err)
	}
}
