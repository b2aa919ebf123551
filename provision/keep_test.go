package provision

import (
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"
)

// TestDownKeepData: down --keep-data stops the instance before it
// terminates it, deletes everything but the bucket, says what it kept and
// how to go on; a second one finds only the bucket; up adopts the bucket
// and says that the new server restores the newest backup; plain down then
// deletes the bucket too. It refuses to sweep.
func TestDownKeepData(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := upStack(t, f, "demo")
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f.Mu.Lock()
	b := f.Buckets[n.Bucket]
	for _, k := range []string{"backups/20261127T101010.000001Z/mlflow.db.gz", "backups/20261127T101010.000001Z/manifest.json",
		"backups/20261127T111111.000001Z/mlflow.db.gz", "artifacts/1/run/artifacts/model.pkl"} {
		b.Versions = append(b.Versions, cloudfake.FakeVersion{Key: k, ID: "1", Size: 10})
		b.Data[k] = []byte("x")
	}
	f.Mu.Unlock()
	down := func(o DownOptions) string {
		t.Helper()
		o.Stack, o.AWS = Stack{Name: "demo", StateDir: dir}, cloud.AWS{Region: cloudfake.FakeRegion}
		var out, log strings.Builder
		o.Streams = Streams{Out: &out, Log: &log}
		if err := Down(f.Ctx(), o); err != nil {
			t.Fatalf("down: %v\n%s", err, log.String())
		}
		return out.String() + log.String()
	}

	f.ResetCalls()
	dry := down(DownOptions{KeepData: true, DryRun: true})
	if !strings.Contains(dry, "(plan) would keep S3 bucket "+n.Bucket+": the artifacts and 1 backup of the tracking data (the newest from 2026-11-27T10:10:10Z") ||
		strings.Contains(dry, "would delete S3 bucket") || len(f.Mutating()) != 0 {
		t.Errorf("dry run:\n%s", dry)
	}
	out := down(DownOptions{KeepData: true, Yes: true})
	calls := f.Mutating()
	if i, j := slices.Index(calls, "EC2.StopInstances"), slices.Index(calls, "EC2.TerminateInstances"); i < 0 || j < i {
		t.Errorf("the instance is not stopped before it is terminated: %v", calls)
	}
	if slices.Contains(calls, "S3.DeleteBucket") || slices.Contains(calls, "S3.DeleteObjects") {
		t.Errorf("down --keep-data deleted from the bucket: %v", calls)
	}
	if got := f.Owns("demo"); len(got) != 1 || !strings.HasPrefix(got[0], "S3 bucket") {
		t.Errorf("after down --keep-data the stack owns %v, want its bucket alone", got)
	}
	if !strings.Contains(out, "kept S3 bucket "+n.Bucket+" with the artifacts and 1 backup") || !strings.Contains(out, "`mlstack up --stack demo --region eu-west-3 --state-dir "+dir+"` makes the stack again") {
		t.Errorf("down --keep-data does not say what it kept and what next:\n%s", out)
	}
	if again := down(DownOptions{KeepData: true, Yes: true}); !strings.Contains(again, "owns nothing but its kept bucket") {
		t.Errorf("second down --keep-data:\n%s", again)
	}

	o, _, log := upOpts(dir, "demo")
	mustUp(t, f, o)
	if !strings.Contains(log.String(), "the kept bucket holds 1 backup of the tracking data (the newest from 2026-11-27T10:10:10Z") {
		t.Errorf("up of a kept stack does not say it restores:\n%s", log.String())
	}
	down(DownOptions{Yes: true})
	if got := f.Owns("demo"); len(got) != 0 {
		t.Errorf("plain down left %v", got)
	}
	err := Down(f.Ctx(), DownOptions{Stack: Stack{StateDir: dir}, AWS: cloud.AWS{Region: cloudfake.FakeRegion}, All: true, KeepData: true, Yes: true})
	if !cloud.IsUsage(err) {
		t.Errorf("down --all --keep-data: %v", err)
	}
}
