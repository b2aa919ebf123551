package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func statusOpts(stack, output string) (StatusOptions, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return StatusOptions{Stack: Stack{Name: stack, StateDir: "/nonexistent"}, Streams: Streams{Out: out}, Output: output}, out
}

func TestStatusTable(t *testing.T) {
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	n := namesFor("demo", fakeAccount, fakeRegion)
	id := f.liveInstances()[0]
	o, out := statusOpts("demo", "")
	if err := Status(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 13 {
		t.Fatalf("status:\n%s", out)
	}
	if lines[0] != "stack demo (account 123456789012, eu-west-3)" {
		t.Errorf("header %q", lines[0])
	}
	want := [][]string{
		{"instance", id, "running"},
		{"security", "group", n.SecurityGroup, "(sg-", "exists"},
		{"key", "pair", n.KeyPair, "exists"},
		{"IAM", "user", n.User, "exists"},
		{"IAM", "role", n.Role, "exists"},
		{"instance", "profile", n.Profile, "exists"},
		{"S3", "bucket", n.Bucket, "exists"},
		{"SSM", "parameter", "/mlstack/demo/admin-password", "exists"},
		{"SSM", "parameter", "/mlstack/demo/flask-secret-key", "exists"},
		{"SSM", "parameter", "/mlstack/demo/ssh-host-key", "exists"},
		{"SSM", "parameter", "/mlstack/demo/tls-cert", "exists"},
	}
	for i, w := range want {
		got := strings.Fields(lines[i+1])
		if len(got) != len(w) {
			t.Errorf("row %d = %q, want %q", i, lines[i+1], w)
			continue
		}
		for j := range w {
			if !strings.HasPrefix(got[j], w[j]) {
				t.Errorf("row %d = %q, want %q", i, lines[i+1], w)
				break
			}
		}
	}
	if !strings.HasPrefix(lines[12], "tracking URI: https://ec2-") || !strings.HasSuffix(lines[12], ":5000") {
		t.Errorf("last line %q", lines[12])
	}
	if m := f.mutating(); len(m) != 0 {
		t.Errorf("status made mutating calls %v", m)
	}
}

func TestStatusJSON(t *testing.T) {
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	o, out := statusOpts("demo", "json")
	if err := Status(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var rep statusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if rep.Stack != "demo" || rep.Account != fakeAccount || rep.Region != fakeRegion || len(rep.Resources) != 11 ||
		rep.Resources[0].Kind != "instance" || rep.Resources[0].State != "running" || !strings.HasPrefix(rep.TrackingURI, "https://ec2-") {
		t.Errorf("report %+v", rep)
	}
	for _, key := range []string{`"tracking_uri"`, `"resources"`, `"kind"`, `"state"`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("json lacks %s:\n%s", key, out)
		}
	}
}

func TestStatusStoppedAndEmpty(t *testing.T) {
	f := newInstalledFake(t)
	upStack(t, f, "demo")
	f.setInstanceState(f.liveInstances()[0], ec2types.InstanceStateNameStopped)
	o, out := statusOpts("demo", "table")
	if err := Status(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "stopped") || !strings.HasSuffix(out.String(), "tracking URI: none (no running instance)\n") {
		t.Errorf("status:\n%s", out)
	}

	o, out = statusOpts("nothing", "")
	if err := Status(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if out.String() != "stack nothing (account 123456789012, eu-west-3)\n  nothing exists\n" {
		t.Errorf("status of nothing = %q", out)
	}

	o, out = statusOpts("nothing", "json")
	if err := Status(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "tracking_uri") || !strings.Contains(out.String(), `"resources": null`) {
		t.Errorf("json of nothing:\n%s", out)
	}
}

func TestStatusIgnoresLookAlikes(t *testing.T) {
	f := newInstalledFake(t)
	n := namesFor("demo", fakeAccount, fakeRegion)
	other := stackTagsFor("other", time.Now())
	f.addUser(n.User, other)
	f.addRole(n.Role, nil)
	f.addProfile(n.Profile, other)
	f.addBucket(n.Bucket, nil)
	f.addBucket("mlstack-x", other)
	f.addKeyPair(n.KeyPair, nil)
	f.addGroup(n.SecurityGroup, nil)
	o, out := statusOpts("demo", "")
	if err := Status(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nothing exists") {
		t.Errorf("status lists look-alikes:\n%s", out)
	}
	// A bucket tagged for another stack is not ours either.
	f.mu.Lock()
	f.buckets[n.Bucket].tags = other
	f.mu.Unlock()
	o, out = statusOpts("demo", "")
	if err := Status(context.Background(), o); err != nil || !strings.Contains(out.String(), "nothing exists") {
		t.Errorf("status = %v:\n%s", err, out)
	}
}

func TestStatusErrors(t *testing.T) {
	for _, c := range []struct{ op, want string }{
		{"DescribeInstances", "listing instances of stack demo"},
		{"DescribeSecurityGroups", "listing security groups of stack demo"},
		{"DescribeKeyPairs", "reading key pair mlstack-demo"},
		{"GetUser", "reading IAM user"},
		{"GetRole", "reading IAM role"},
		{"GetInstanceProfile", "reading instance profile"},
		{"GetBucketTagging", "reading S3 bucket"},
	} {
		t.Run(c.op, func(t *testing.T) {
			f := newInstalledFake(t)
			upStack(t, f, "demo")
			f.failNext(c.op, awsErr("ServiceUnavailable"), 1)
			o, out := statusOpts("demo", "")
			err := Status(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !hasCode(err, "ServiceUnavailable") {
				t.Fatalf("status = %v", err)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on an error", out)
			}
		})
	}
	t.Run("bad input", func(t *testing.T) {
		f := newInstalledFake(t)
		for _, o := range []StatusOptions{
			{Stack: Stack{Name: "demo", StateDir: "/x"}, Output: "yaml"},
			{Stack: Stack{Name: "-demo", StateDir: "/x"}},
			{Stack: Stack{Name: "demo", StateDir: "/x"}, AWS: AWS{Region: "EU"}},
		} {
			if err := Status(context.Background(), o); !IsUsage(err) {
				t.Errorf("status(%+v) = %v", o, err)
			}
		}
		if f.connect != 0 {
			t.Error("bad input reached AWS")
		}
	})
}
