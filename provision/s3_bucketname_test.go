package provision

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestBucketNamespace: new buckets live in the account-regional namespace
// (nobody else can take the name); where S3 has none, the global name.
func TestBucketNamespace(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		region, bucket string
		ns             s3types.BucketNamespace
	}{
		{"eu-west-3", "mlstack-demo-123456789012-eu-west-3-an", s3types.BucketNamespaceAccountRegional},
		{"me-south-1", "mlstack-demo-123456789012-me-south-1", ""},
	} {
		t.Run(c.region, func(t *testing.T) {
			f := newInstalledFake(t)
			f.Region = c.region
			f.Offered = map[string][]string{"t2.micro": {c.region + "a"}, "t3.micro": {c.region + "a"}} // me-south-1 has no t2
			f.Subnets[0].AvailabilityZone = &[]string{c.region + "a"}[0]
			dir := t.TempDir()
			o, _, _ := upOpts(dir, "demo")
			o.Region = c.region
			mustUp(t, f, o)
			f.Mu.Lock()
			b := f.Buckets[c.bucket]
			f.Mu.Unlock()
			if b == nil || b.Namespace != c.ns || b.Tags[cloud.TagStack] != "demo" {
				t.Fatalf("bucket %s: %+v", c.bucket, b)
			}
			if got := savedSecrets(t, dir, "demo").Bucket; got != c.bucket {
				t.Errorf("state records bucket %q", got)
			}
		})
	}
}

// TestLegacyGlobalBucket: a stack made before the regional namespace keeps
// its bucket under the global name: up, status and down use it.
func TestLegacyGlobalBucket(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.AddBucket(n.GlobalBucket, cloudfake.StackTagsFor("demo", time.Now()))
	dir := t.TempDir()
	o, _, _ := upOpts(dir, "demo")
	mustUp(t, f, o)
	f.Mu.Lock()
	_, regional := f.Buckets[n.Bucket]
	f.Mu.Unlock()
	if regional || f.Count("S3.CreateBucket") != 0 {
		t.Fatal("up made a second bucket beside the stack's global one")
	}
	if got := savedSecrets(t, dir, "demo").Bucket; got != n.GlobalBucket {
		t.Errorf("state records bucket %q, want %q", got, n.GlobalBucket)
	}
	f.Mu.Lock()
	policy := f.Users["mlstack-demo"].Policies[n.Policy]
	f.Mu.Unlock()
	if !strings.Contains(policy, ":::"+n.GlobalBucket+"/artifacts/*") {
		t.Errorf("user policy does not name the stack's bucket: %s", policy)
	}
	if err := Down(f.Ctx(), DownOptions{Stack: Stack{Name: "demo", StateDir: dir}, Yes: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.Owns("demo"); len(got) != 0 {
		t.Errorf("down left %v", got)
	}
}

// TestHalfCreatedBucket: a bucket made but not tagged (the tagging call
// failed) is this stack's for the machine that made it: the next up tags
// it, down removes it; a machine without that record never touches it.
func TestHalfCreatedBucket(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"up", "down", "fresh machine"} {
		t.Run(next, func(t *testing.T) {
			f := newInstalledFake(t)
			n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
			f.FailNext("PutBucketTagging", cloudfake.AwsErr("AccessDenied"), 1)
			dir := t.TempDir()
			o, _, _ := upOpts(dir, "demo")
			if err := Up(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "tagging S3 bucket") {
				t.Fatalf("first up: %v", err)
			}
			if got := savedSecrets(t, dir, "demo").PendingBucket; got != n.Bucket {
				t.Fatalf("pending bucket %q, want %q", got, n.Bucket)
			}
			switch next {
			case "up":
				o, _, log := upOpts(dir, "demo")
				mustUp(t, f, o)
				f.Mu.Lock()
				tagged := f.Buckets[n.Bucket].Tags[cloud.TagStack] == "demo"
				f.Mu.Unlock()
				if !tagged || savedSecrets(t, dir, "demo").PendingBucket != "" || !strings.Contains(log.String(), "an interrupted run of this stack created") {
					t.Errorf("second up: tagged %v, pending %q\n%s", tagged, savedSecrets(t, dir, "demo").PendingBucket, log)
				}
			case "down":
				if err := Down(f.Ctx(), DownOptions{Stack: Stack{Name: "demo", StateDir: dir}, Yes: true}); err != nil {
					t.Fatal(err)
				}
				f.Mu.Lock()
				_, left := f.Buckets[n.Bucket]
				f.Mu.Unlock()
				if left || len(f.Owns("demo")) != 0 {
					t.Errorf("down left the half-created bucket (%v) or %v", left, f.Owns("demo"))
				}
			case "fresh machine":
				fresh := t.TempDir()
				o, _, _ := upOpts(fresh, "demo")
				if err := Up(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "not tagged") {
					t.Errorf("up from a machine without the record: %v, want a refusal", err)
				}
				var log bytes.Buffer
				_ = Down(f.Ctx(), DownOptions{Stack: Stack{Name: "demo", StateDir: fresh}, Yes: true, Streams: Streams{Log: &log}})
				f.Mu.Lock()
				_, kept := f.Buckets[n.Bucket]
				f.Mu.Unlock()
				// A new bucket is made before the rest of the stack (its name
				// may change): with no IAM user to vouch, down sees no stack.
				if !kept || !strings.Contains(log.String(), "leaving S3 bucket") && !strings.Contains(log.String(), "owns nothing") {
					t.Errorf("down from a machine without the record: kept %v\n%s", kept, log.String())
				}
			}
		})
	}
}

// TestBucketTaggedAtCreation: where S3 takes tags with CreateBucket, a
// failed tagging call afterwards leaves a tagged bucket, not a stuck one.
func TestBucketTaggedAtCreation(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.KeepCreateTags = true
	f.FailNext("PutBucketTagging", cloudfake.AwsErr("InternalError"), 1)
	dir := t.TempDir()
	o, _, _ := upOpts(dir, "demo")
	if err := Up(f.Ctx(), o); err == nil {
		t.Fatal("first up passed")
	}
	f.Mu.Lock()
	tagged := f.Buckets[cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion).Bucket].Tags[cloud.TagStack] == "demo"
	f.Mu.Unlock()
	if !tagged {
		t.Fatal("CreateBucket did not carry the stack's tags")
	}
	// The next up goes on with the bucket it finds tagged.
	o, _, _ = upOpts(dir, "demo")
	mustUp(t, f, o)
	if f.Count("S3.CreateBucket") != 1 {
		t.Errorf("CreateBucket called %d times", f.Count("S3.CreateBucket"))
	}
}

// TestBucketNameBusy: S3 keeps a deleted bucket's name for a while
// (OperationAborted): up waits, says so once, and within a bound gives up
// with a plain message.
func TestBucketNameBusy(t *testing.T) {
	t.Parallel()
	busy := cloudfake.AwsErrMsg("OperationAborted", "A conflicting conditional operation is currently in progress against this resource. Please try again.")

	f := newInstalledFake(t)
	f.FailNext("CreateBucket", busy, 2)
	o, _, log := upOpts(t.TempDir(), "demo")
	o.Streams.Log = log
	mustUp(t, f, o) // S3 frees the name within the production wait
	if strings.Count(log.String(), "S3 still holds the name") != 1 || f.Count("S3.CreateBucket") != 3 {
		t.Errorf("CreateBucket %d times; progress:\n%s", f.Count("S3.CreateBucket"), log)
	}

	f = newInstalledFake(t)
	f.FailNext("CreateBucket", busy, -1)
	o, _, _ = upOpts(t.TempDir(), "demo")
	err := Up(f.CtxWaits(func(w *cloud.Waits) { w.NameBusy = 50 * time.Millisecond }), o)
	if err == nil || !strings.Contains(err.Error(), "S3 still holds the name") || !strings.Contains(err.Error(), "try again in a few minutes") ||
		!strings.Contains(err.Error(), "run `mlstack up --stack demo") {
		t.Fatalf("name busy for good: %v", err)
	}
}

// TestRegionalNamespaceRefused: where S3 refuses the account-regional
// namespace header (a region or partition without it), up makes the bucket
// under its global name instead, says so, and everything that names the
// bucket names that one (the user's and the role's policies, the recorded
// state), a second up changes nothing, and down removes it.
func TestRegionalNamespaceRefused(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	f.NoRegionalNamespace = true
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	dir := t.TempDir()
	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if !strings.Contains(log.String(), "S3 refuses the account-regional bucket namespace here (NotImplemented): creating the bucket as "+n.GlobalBucket) {
		t.Errorf("progress:\n%s", log)
	}
	f.Mu.Lock()
	b, regional := f.Buckets[n.GlobalBucket], f.Buckets[n.Bucket] != nil
	user, role := f.Users["mlstack-demo"].Policies[n.Policy], fmt.Sprint(f.Roles[n.Role].Policies)
	f.Mu.Unlock()
	if b == nil || regional || b.Namespace != "" || b.Tags[cloud.TagStack] != "demo" {
		t.Fatalf("global bucket %+v, regional one made: %v", b, regional)
	}
	for what, text := range map[string]string{"user policy": user, "role policy": role} {
		if !strings.Contains(text, ":::"+n.GlobalBucket) || strings.Contains(text, n.Bucket) {
			t.Errorf("%s does not name the global bucket only: %s", what, text)
		}
	}
	if got := savedSecrets(t, dir, "demo").Bucket; got != n.GlobalBucket {
		t.Errorf("state records bucket %q, want %q", got, n.GlobalBucket)
	}
	f.ResetCalls()
	o, _, _ = upOpts(dir, "demo")
	mustUp(t, f, o)
	if m := f.Mutating(); len(m) > 0 {
		t.Errorf("re-up changed %v", m)
	}
	if err := Down(f.Ctx(), DownOptions{Stack: Stack{Name: "demo", StateDir: dir}, Yes: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.Owns("demo"); len(got) != 0 {
		t.Errorf("down left %v", got)
	}
}
