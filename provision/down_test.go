package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
)

// downOpts are the options of a down of stack in dir.
func downOpts(dir, stack string) (DownOptions, *bytes.Buffer, *bytes.Buffer) {
	out, log := &bytes.Buffer{}, &bytes.Buffer{}
	return DownOptions{Stack: Stack{Name: stack, StateDir: dir}, Streams: Streams{Out: out, Log: log}}, out, log
}

func fkExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestDownDeletesInDependencyOrder(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.ResetCalls()
	o, out, log := downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("down: %v\n%s", err, log)
	}
	want := []string{
		"EC2.TerminateInstances",
		"EC2.DeleteSecurityGroup",
		"EC2.DeleteKeyPair",
		"IAM.RemoveRoleFromInstanceProfile", "IAM.DeleteInstanceProfile",
		"IAM.DeleteRolePolicy", "IAM.DeleteRole",
		"SSM.DeleteParameters",
		"S3.DeleteObjects", // the install lock
		"S3.DeleteBucket",
		"IAM.DeleteAccessKey", "IAM.DeleteUserPolicy", "IAM.DeleteUser",
	}
	if got := f.Mutating(); !slices.Equal(got, want) {
		t.Errorf("mutating calls\n got %v\nwant %v", got, want)
	}
	if left := f.Owns("demo"); len(left) != 0 {
		t.Errorf("left in AWS: %v", left)
	}
	if fkExists(local.StackDir(dir, "demo").Path()) {
		t.Error("local state not removed")
	}
	if out.Len() != 0 {
		t.Errorf("down printed %q on stdout", out)
	}
	if !strings.Contains(log.String(), "stack demo is gone") {
		t.Errorf("progress:\n%s", log)
	}
}

func TestDownDryRun(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.ResetCalls()
	o, out, _ := downOpts(dir, "demo")
	o.DryRun = true
	o.hooks.TrackingURI = "http://127.0.0.1:1" // nothing listens: not counted
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	id := f.LiveInstances()[0]
	for _, want := range []string{
		"(plan) would delete instance " + n.Instance + " (" + id + ")",
		"(plan) would delete security group " + n.SecurityGroup + " (sg-",
		"(plan) would delete key pair " + n.KeyPair,
		"(plan) would delete IAM user " + n.User,
		"(plan) would delete IAM role " + n.Role,
		"(plan) would delete instance profile " + n.Profile,
		"(plan) would delete S3 bucket " + n.Bucket,
		"(plan) would delete SSM parameter /mlstack/demo/admin-password",
		"(plan) would delete SSM parameter /mlstack/demo/artifacts",
		"(plan) would delete SSM parameter /mlstack/demo/flask-secret-key",
		"(plan) would delete SSM parameter /mlstack/demo/ssh-host-key",
		"(plan) would delete SSM parameter /mlstack/demo/tls-cert",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"(plan) would lose for good: the experiments and runs in the server's database (not counted: POST /api/2.0/mlflow/experiments/search: dial tcp 127.0.0.1:1: connect: connection refused)",
		"(plan) would lose for good: 0 artifact files (0 bytes, every version) in S3 bucket " + n.Bucket,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out.String(), "\n"); lines != 14 {
		t.Errorf("%d plan lines:\n%s", lines, out)
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("dry run made mutating calls %v", m)
	}
	if len(f.Owns("demo")) != 12 || savedSecrets(t, dir, "demo") == nil {
		t.Error("dry run changed something")
	}

	// A dry run of nothing keeps the (empty) local state too.
	o, out, _ = downOpts(dir, "nothing")
	o.DryRun = true
	if err := Down(f.Ctx(), o); err != nil || out.Len() != 0 {
		t.Errorf("dry run of an empty stack: %v, %q", err, out)
	}
}

func TestDownConfirmation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		confirm func(string) (bool, error)
		wantErr string
		usage   bool
		deleted bool
	}{
		{"no terminal", nil, "refusing to delete stack demo without --yes", true, false},
		{"answered no", func(string) (bool, error) { return false, nil }, "not confirmed: nothing deleted", true, false},
		{"cannot ask", func(string) (bool, error) { return false, errors.New("tty gone") }, "tty gone", false, false},
		{"answered yes", func(string) (bool, error) { return true, nil }, "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			dir := upStack(t, f, "demo")
			f.ResetCalls()
			o, _, log := downOpts(dir, "demo")
			var prompt string
			if c.confirm != nil {
				o.Confirm = func(p string) (bool, error) { prompt = p; return c.confirm(p) }
			}
			err := Down(f.Ctx(), o)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("down = %v, want %q", err, c.wantErr)
			}
			if cloud.IsUsage(err) != c.usage {
				t.Errorf("IsUsage(%v) = %v", err, cloud.IsUsage(err))
			}
			if c.confirm != nil && prompt != "Delete stack demo, 12 resources above, in eu-west-3? [y/N] " {
				t.Errorf("prompt %q", prompt)
			}
			if c.confirm != nil && !strings.Contains(log.String(), "IAM user mlstack-demo") {
				t.Errorf("the resources are not listed before asking:\n%s", log)
			}
			if gone := len(f.Owns("demo")) == 0; gone != c.deleted {
				t.Errorf("deleted = %v, want %v (mutating calls %v)", gone, c.deleted, f.Mutating())
			}
			if !c.deleted && len(f.Mutating()) != 0 {
				t.Errorf("mutating calls without confirmation: %v", f.Mutating())
			}
		})
	}
}

func TestDownLeftBehindKeepsLocalState(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.FailNext("DeleteBucket", cloudfake.AwsErr("InternalError"), 1)
	o, _, _ := downOpts(dir, "demo")
	o.Yes = true
	err := Down(f.Ctx(), o)
	var lb *LeftBehindError
	if !errors.As(err, &lb) {
		t.Fatalf("down = %v, want a *LeftBehindError", err)
	}
	if lb.Stack != "demo" || lb.Sweep || len(lb.Remaining) != 1 || lb.Remaining[0].Kind != cloud.KindBucket || lb.Remaining[0].Name != n.Bucket {
		t.Errorf("left behind %+v", lb)
	}
	if msg := err.Error(); !strings.Contains(msg, "InternalError") || !strings.Contains(msg, "stack demo still owns: S3 bucket "+n.Bucket) ||
		!strings.Contains(msg, "run `mlstack down --stack demo --state-dir "+dir+" --yes` again") {
		t.Errorf("message: %s", msg)
	}
	if !cloud.HasCode(err, "InternalError") {
		t.Error("LeftBehindError does not unwrap to the cause")
	}
	// Every other step ran.
	if left := f.Owns("demo"); !slices.Equal(left, []string{"S3 bucket " + n.Bucket}) {
		t.Errorf("left in AWS: %v", left)
	}
	if savedSecrets(t, dir, "demo") == nil {
		t.Fatal("local state removed while the stack still owns something")
	}
	// Running down again finishes the job.
	o, _, _ = downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if fkExists(local.StackDir(dir, "demo").Path()) || len(f.Owns("demo")) != 0 {
		t.Error("second down did not finish")
	}
}

func TestDownLeavesForeignResourcesAlone(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	other := cloudfake.StackTagsFor("other", time.Now())

	t.Run("only look-alikes", func(t *testing.T) {
		f := newInstalledFake(t)
		f.AddUser(n.User, nil)
		f.AddRole(n.Role, other)
		f.AddProfile(n.Profile, nil)
		f.AddBucket(n.Bucket, nil)
		f.AddGroup(n.SecurityGroup, nil)
		f.AddKeyPair(n.KeyPair, other)
		f.AddInstance(other, ec2types.InstanceStateNameRunning)
		dir := t.TempDir()
		must(t, os.MkdirAll(local.StackDir(dir, "demo").Path(), 0o700))
		o, _, log := downOpts(dir, "demo")
		o.Yes = true
		if err := Down(f.Ctx(), o); err != nil {
			t.Fatal(err)
		}
		if m := f.Mutating(); len(m) != 0 {
			t.Errorf("mutating calls on look-alikes: %v", m)
		}
		if !strings.Contains(log.String(), "stack demo owns nothing in account 123456789012, eu-west-3") {
			t.Errorf("progress:\n%s", log)
		}
		if fkExists(local.StackDir(dir, "demo").Path()) {
			t.Error("empty local state kept")
		}
		if len(f.Owns("demo")) != 6 || len(f.LiveInstances()) != 1 {
			t.Errorf("look-alikes touched: %v", f.Owns("demo"))
		}
	})

	t.Run("look-alikes beside the stack", func(t *testing.T) {
		f := newInstalledFake(t)
		dir := upStack(t, f, "demo")
		// Someone replaced or re-tagged some of the stack's names.
		f.Mu.Lock()
		f.KeyPairs[0].Kp.Tags = nil
		f.Users[n.User].User.Tags = cloud.IAMTags(other)
		f.Profiles[n.Profile].Prof.Tags = nil
		f.Roles[n.Role].Role.Tags = nil
		f.Buckets[n.Bucket].Tags = nil
		f.Mu.Unlock()
		f.ResetCalls()
		o, _, log := downOpts(dir, "demo")
		o.Yes = true
		if err := Down(f.Ctx(), o); err != nil {
			t.Fatalf("down: %v", err)
		}
		// The SSM path is the stack's by name, like its derived names.
		if got := f.Mutating(); !slices.Equal(got, []string{"EC2.TerminateInstances", "EC2.DeleteSecurityGroup", "SSM.DeleteParameters"}) {
			t.Errorf("mutating calls %v", got)
		}
		for _, want := range []string{"leaving key pair mlstack-demo alone", "leaving IAM user mlstack-demo alone",
			"leaving instance profile mlstack-demo-server alone", "leaving IAM role mlstack-demo-server alone",
			"leaving S3 bucket " + n.Bucket + " alone"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("progress lacks %q:\n%s", want, log)
			}
		}
		if len(f.Owns("demo")) != 5 {
			t.Errorf("left: %v", f.Owns("demo"))
		}
	})
}

func TestDownRetriesDependencyViolation(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.FailNext("DeleteSecurityGroup", cloudfake.AwsErr("DependencyViolation"), 2)
	o, _, _ := downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("EC2.DeleteSecurityGroup"); n != 3 {
		t.Errorf("DeleteSecurityGroup called %d times, want 3", n)
	}
	if len(f.Owns("demo")) != 0 {
		t.Errorf("left: %v", f.Owns("demo"))
	}
}

func TestDownWaitsForShuttingDownInstances(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	// A second, shutting-down instance of the stack: down waits for both.
	extra := f.AddStackInstance("demo", ec2types.InstanceStateNameShuttingDown)
	o, _, log := downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), extra) || len(f.LiveInstances()) != 0 {
		t.Errorf("live %v; progress:\n%s", f.LiveInstances(), log)
	}
}

func TestDownStepErrors(t *testing.T) {
	t.Parallel()
	// Each failing step is reported; the others still run.
	cases := []struct{ op, want string }{
		{"DeleteSecurityGroup", "deleting security group"},
		{"DeleteKeyPair", "deleting key pair"},
		{"RemoveRoleFromInstanceProfile", "removing role from instance profile"},
		{"DeleteInstanceProfile", "deleting instance profile"},
		{"DeleteRolePolicy", "deleting policy mlstack-bucket of IAM role"},
		{"DeleteRole", "deleting IAM role"},
		{"DeleteAccessKey", "deleting access key of"},
		{"DeleteUserPolicy", "deleting policy mlstack-bucket of"},
		{"DeleteUser", "deleting IAM user"},
		{"ListUserPolicies", "listing policies of"},
		{"ListRolePolicies", "listing policies of IAM role"},
		{"ListAttachedRolePolicies", "listing attached policies"},
		{"ListObjectVersions", "listing objects of S3 bucket"},
		{"ListMultipartUploads", "listing unfinished uploads"},
		// The steps delete what the inventory read (TestStatusErrors fails
		// its reads); the profile's roles are read again to remove them.
		{"GetInstanceProfile", "reading instance profile"},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			f := newInstalledFake(t)
			dir := upStack(t, f, "demo")
			o, _, _ := downOpts(dir, "demo")
			o.Yes = true
			// Fail the first call of the step, after the inventory's reads.
			skip := map[string]int{"GetInstanceProfile": 1}[c.op]
			if skip > 0 {
				// The inventory reads first: let it through once.
				seen := 0
				f.FailIf(c.op, cloudfake.AwsErr("InternalError"), 1, false, func(in any) bool {
					// The database's group is read too: count the server's.
					if c.op == "DescribeSecurityGroups" && !cloudfake.ForGroup("mlstack-demo")(in) {
						return false
					}
					seen++
					return seen > skip
				})
			} else {
				f.FailNext(c.op, cloudfake.AwsErr("InternalError"), 1)
			}
			err := Down(f.Ctx(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("down = %v, want %q", err, c.want)
			}
			if savedSecrets(t, dir, "demo") == nil {
				t.Error("local state removed after a failed step")
			}
			// Down again completes.
			o, _, _ = downOpts(dir, "demo")
			o.Yes = true
			if err := Down(f.Ctx(), o); err != nil {
				t.Fatalf("second down: %v", err)
			}
			if len(f.Owns("demo")) != 0 {
				t.Errorf("left: %v", f.Owns("demo"))
			}
		})
	}
}

func TestDownInventoryFails(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.FailNext("GetBucketTagging", cloudfake.AwsErr("AccessDenied"), 1)
	o, _, _ := downOpts(dir, "demo")
	o.Yes = true
	err := Down(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "reading S3 bucket") || len(f.Mutating()) != 0 {
		t.Fatalf("down = %v, mutating %v", err, f.Mutating())
	}
}

func TestDownCancelledKeepsLocalState(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	ctx, cancel := context.WithCancel(f.Ctx())
	o, _, _ := downOpts(dir, "demo")
	o.Yes = true
	// Interrupted right after confirming: the steps run (the fake does not
	// look at the context), but down reports the interrupt and keeps the state.
	f.FailIf("TerminateInstances", nil, 1, false, func(any) bool { cancel(); return false })
	err := Down(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("down = %v", err)
	}
	if savedSecrets(t, dir, "demo") == nil {
		t.Error("local state removed after an interrupt")
	}
}

func TestDownOptionsValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(o *DownOptions)
		want string
	}{
		{"older-than without a sweep", func(o *DownOptions) { o.OlderThan = time.Hour }, "--older-than goes with --all or --expired"},
		{"negative older-than", func(o *DownOptions) { o.Stack.Name, o.All, o.OlderThan = "", true, -time.Hour }, "--older-than must be positive"},
		{"stack with --expired", func(o *DownOptions) { o.Expired = true }, "--stack cannot be combined"},
		{"stack with --all", func(o *DownOptions) { o.All = true }, "--stack cannot be combined"},
		{"no stack", func(o *DownOptions) { o.Stack.Name = "" }, "missing stack name"},
		{"bad stack", func(o *DownOptions) { o.Stack.Name = "x_y" }, "lowercase"},
		{"sweep without state dir", func(o *DownOptions) { o.Stack = Stack{}; o.Expired = true }, "no state directory"},
		{"negative timeout", func(o *DownOptions) { o.Timeout = -1 }, "--timeout"},
		{"bad region", func(o *DownOptions) { o.Region = "eu_west_3" }, "not a valid AWS region"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newInstalledFake(t)
			o, _, _ := downOpts(t.TempDir(), "demo")
			c.edit(&o)
			err := Down(f.Ctx(), o)
			if !cloud.IsUsage(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("down = %v, want a usage error with %q", err, c.want)
			}
			if f.Connects != 0 {
				t.Error("bad input reached AWS")
			}
		})
	}
}

func TestDownForeignStateDir(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.Region = "eu-west-1"
	o, _, _ := downOpts(dir, "demo")
	o.Yes = true
	err := Down(f.Ctx(), o)
	if !cloud.IsUsage(err) || !strings.Contains(err.Error(), "region eu-west-3") {
		t.Fatalf("down = %v", err)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("mutating calls %v", f.Mutating())
	}
}

func TestDownTerminateFailureStopsAtTheSecurityGroup(t *testing.T) {
	t.Parallel()
	// The instance cannot be terminated: its group answers
	// DependencyViolation until down gives up (here: the context ends).
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.FailNext("TerminateInstances", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	ctx, cancel := context.WithTimeout(f.Ctx(), 100*time.Millisecond)
	defer cancel()
	o, _, _ := downOpts(dir, "demo")
	o.Yes = true
	err := Down(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") || !strings.Contains(err.Error(), "deleting security group") {
		t.Fatalf("down = %v", err)
	}
	if id := f.LiveInstances()[0]; !strings.Contains(err.Error(), "terminating instance "+id+": ") {
		t.Errorf("down = %v: want the instance named in words", err)
	}
	if f.Count("EC2.DeleteSecurityGroup") < 2 {
		t.Error("DependencyViolation was not retried")
	}
	if len(f.LiveInstances()) != 1 || savedSecrets(t, dir, "demo") == nil {
		t.Error("instance or local state gone")
	}
}

// TestDownTerminateAnsweredWithAnError: the termination happened but the
// answer was an error (a retried call the emulator refuses): down looks,
// sees the instance going, and finishes.
func TestDownTerminateAnsweredWithAnError(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	f.FailAfter("TerminateInstances", cloudfake.AwsErr("InvalidNetworkInterfaceID.NotFound"), 1)
	o, _, log := downOpts(dir, "demo")
	o.Yes = true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatalf("down = %v\n%s", err, log)
	}
	if len(f.Owns("demo")) != 0 {
		t.Errorf("left %v", f.Owns("demo"))
	}
}

// mlflowCounts is an MLflow server with experiments "0" and "1" holding 2
// and 3 runs, each search answered a page at a time; it wants user and
// password.
func mlflowCounts(t *testing.T, user, password string) string {
	srv := httptest.NewServer(mlflowCountsHandler(user, password))
	t.Cleanup(srv.Close)
	return srv.URL
}

// mlflowCountsTLS is mlflowCounts over TLS, with httptest's self-signed
// certificate for 127.0.0.1 (PEM), which no system trusts.
func mlflowCountsTLS(t *testing.T, user, password string) (uri string, certPEM []byte) {
	srv := httptest.NewTLSServer(mlflowCountsHandler(user, password))
	t.Cleanup(srv.Close)
	return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func mlflowCountsHandler(user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body struct {
			IDs   []string `json:"experiment_ids"`
			Token string   `json:"page_token"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch {
		case r.URL.Path == "/api/2.0/mlflow/experiments/search" && body.Token == "":
			fmt.Fprint(w, `{"experiments":[{"experiment_id":"0"}],"next_page_token":"more"}`)
		case r.URL.Path == "/api/2.0/mlflow/experiments/search":
			fmt.Fprint(w, `{"experiments":[{"experiment_id":"1"}]}`)
		case r.URL.Path == "/api/2.0/mlflow/runs/search" && body.Token == "":
			fmt.Fprintf(w, `{"runs":[{},{}],"next_page_token":"more"}`)
		case r.URL.Path == "/api/2.0/mlflow/runs/search" && slices.Equal(body.IDs, []string{"0", "1"}):
			fmt.Fprint(w, `{"runs":[{},{},{}]}`)
		default:
			http.NotFound(w, r)
		}
	})
}

// TestDownSaysWhatIsLost: before asking, down counts the runs in the
// server's database and the artifacts in the bucket; what it cannot count
// it says why, and asks all the same.
func TestDownSaysWhatIsLost(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.Mu.Lock()
	// The install lock under bootstrap/ is no artifact: not counted.
	f.Buckets[n.Bucket].Versions = append(f.Buckets[n.Bucket].Versions, []cloudfake.FakeVersion{
		{Key: "artifacts/a", ID: "1", Size: 1500}, {Key: "artifacts/a", ID: "2", Size: 2500},
		{Key: "artifacts/b", ID: "1", Size: 1000}, {Key: "artifacts/c", ID: "1", Size: 500}, {Key: "artifacts/c", ID: "2", Marker: true}}...)
	f.Mu.Unlock()
	sec := savedSecrets(t, dir, "demo")
	for _, c := range []struct{ name, uri, want string }{
		{"counted", mlflowCounts(t, sec.MLflowUser, sec.MLflowPassword), "5 runs in 2 experiments in the server's database"},
		{"wrong password", mlflowCounts(t, sec.MLflowUser, "other"), "the experiments and runs in the server's database (not counted: POST /api/2.0/mlflow/experiments/search: 401"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, _, log := downOpts(dir, "demo")
			o.hooks.TrackingURI = c.uri
			o.Confirm = func(string) (bool, error) { return false, nil }
			if err := Down(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "not confirmed") {
				t.Fatalf("down = %v", err)
			}
			for _, want := range []string{"lost for good:", c.want, "2 artifact files (5.5 kB, every version) in S3 bucket " + n.Bucket} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("progress lacks %q:\n%s", want, log)
				}
			}
		})
	}
	// Over TLS, the count trusts the pinned certificate alone.
	uri, certPEM := mlflowCountsTLS(t, sec.MLflowUser, sec.MLflowPassword)
	for _, c := range []struct {
		name string
		pin  []byte
		want string
	}{
		{"the server's certificate pinned", certPEM, "5 runs in 2 experiments in the server's database"},
		{"another certificate pinned", cloudfake.TestCert("ec2-other.example", "127.0.0.1"), "(not counted: POST /api/2.0/mlflow/experiments/search: "},
		{"none pinned", nil, "(not counted: no pinned server certificate in " + local.StackDir(dir, "demo").Path() + ": `mlstack up --stack demo"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sd := local.StackDir(dir, "demo")
			must(t, os.RemoveAll(sd.ServerCertFile()))
			if c.pin != nil {
				must(t, sd.SaveServerCert(c.pin))
			}
			o, _, log := downOpts(dir, "demo")
			o.hooks.TrackingURI = uri
			o.Confirm = func(string) (bool, error) { return false, nil }
			_ = Down(f.Ctx(), o)
			if !strings.Contains(log.String(), c.want) {
				t.Errorf("progress lacks %q:\n%s", c.want, log)
			}
			if c.pin == nil || !bytes.Equal(c.pin, certPEM) {
				if strings.Contains(log.String(), "5 runs in") {
					t.Errorf("counted the runs of a server whose certificate is not the pinned one:\n%s", log)
				}
			}
		})
	}

	// Without the password here, the runs are not counted, and why.
	o, _, log := downOpts(t.TempDir(), "demo")
	o.Confirm = func(string) (bool, error) { return false, nil }
	_ = Down(f.Ctx(), o)
	if !strings.Contains(log.String(), "(not counted: this machine has no MLflow password for the stack)") {
		t.Errorf("progress:\n%s", log)
	}
}

// deleteKind is what down does for one kind of resource: read the stack's
// inventory, warn about same-named resources of the kind that are not the
// stack's, and run the delete step that owns the kind's rows.
func deleteKind(ctx context.Context, f *cloudfake.FakeAWS, n cloud.Names, kind string, log *progress) error {
	inv, err := inventory(ctx, f.Session(), n, "")
	if err != nil {
		return err
	}
	for _, stage := range deleteOrder {
		for _, st := range stage {
			if !st.owns(n, cloud.Resource{Kind: kind, Name: n.SecurityGroup}) {
				continue
			}
			for _, r := range inv.alone {
				if st.owns(n, r) {
					log.Warn("leaving %s alone: it is not tagged %s=%s", label(r), cloud.TagStack, n.Stack)
				}
			}
			if slices.ContainsFunc(inv.rows, func(r cloud.Resource) bool { return st.owns(n, r) }) {
				return st.run(ctx, f.Session(), n, deletion{timeout: time.Minute}, inv, log)
			}
		}
	}
	return nil
}

// TestDownLateInstance: an instance of the stack that EC2 did not list
// when down read the stack (launched just before, by an interrupted up)
// is listed once more at the end: down names it as left behind and keeps
// the local state, instead of saying the stack is gone while it bills.
func TestDownLateInstance(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	ctx := f.Ctx()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	s := f.Session()
	inv, err := inventory(ctx, s, n, "")
	if err != nil {
		t.Fatal(err)
	}
	late := f.AddInstance(cloudfake.StackTagsFor("demo", time.Now()), ec2types.InstanceStateNameRunning)
	log, _ := bufProgress()
	err = deleteStack(ctx, s, n, local.StackDir(dir, "demo"), deletion{timeout: time.Minute}, inv, log)
	var left *LeftBehindError
	if !errors.As(err, &left) || len(left.Remaining) != 1 || left.Remaining[0].ID != late {
		t.Fatalf("down with an instance launched after its read: %v", err)
	}
	if savedSecrets(t, dir, "demo") == nil {
		t.Error("local state removed while an instance of the stack runs")
	}
}
