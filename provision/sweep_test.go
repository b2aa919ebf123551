package provision

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

// sweepFixture makes four stacks in one state dir:
//
//	expired  created 48 h ago, expired an hour ago
//	fresh    created now, expires in 4 h
//	old      created 72 h ago, no expiry
//	new      created now, no expiry
func sweepFixture(t *testing.T) (*cloudfake.FakeAWS, string, time.Time) {
	t.Helper()
	f := newInstalledFake(t)
	dir := t.TempDir()
	now := time.Now().UTC()
	for _, st := range []string{"expired", "fresh", "old", "new"} {
		o, _, _ := upOpts(dir, st)
		if st == "fresh" {
			o.TTL = "4h"
		}
		mustUp(t, f, o)
	}
	f.RetagAll("expired", cloud.TagCreatedAt, now.Add(-48*time.Hour).Format(time.RFC3339))
	f.RetagAll("expired", cloud.TagExpiresAt, now.Add(-time.Hour).Format(time.RFC3339))
	f.RetagAll("old", cloud.TagCreatedAt, now.Add(-72*time.Hour).Format(time.RFC3339))
	f.ResetCalls()
	return f, dir, now
}

// sweepOpts are the options of a sweep of dir (no stack named).
func sweepOpts(dir string) (DownOptions, *bytes.Buffer, *bytes.Buffer) { return downOpts(dir, "") }

func TestSweepSelection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		edit      func(o *DownOptions)
		deleted   []string
		noneMatch bool
	}{
		{"expired", func(o *DownOptions) { o.Expired = true }, []string{"expired"}, false},
		{"expired and older than a day", func(o *DownOptions) { o.Expired, o.OlderThan = true, 24*time.Hour }, []string{"expired"}, false},
		{"expired and older than three days", func(o *DownOptions) { o.Expired, o.OlderThan = true, 71*time.Hour }, nil, true},
		{"all older than a day", func(o *DownOptions) { o.All, o.OlderThan = true, 24*time.Hour }, []string{"expired", "old"}, false},
		{"all", func(o *DownOptions) { o.All = true }, []string{"expired", "fresh", "new", "old"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, dir, _ := sweepFixture(t)
			o, out, log := sweepOpts(dir)
			o.Yes = true
			c.edit(&o)
			if err := Down(f.Ctx(), o); err != nil {
				t.Fatalf("sweep: %v\n%s", err, log)
			}
			var want strings.Builder
			for _, st := range c.deleted {
				want.WriteString("deleted  " + st + "\n")
			}
			if out.String() != want.String() {
				t.Errorf("summary:\n%s\nwant:\n%s", out, &want)
			}
			if c.noneMatch != strings.Contains(log.String(), "no matching stacks in eu-west-3") {
				t.Errorf("progress:\n%s", log)
			}
			for _, st := range []string{"expired", "fresh", "old", "new"} {
				gone := slices.Contains(c.deleted, st)
				if left := f.Owns(st); gone != (len(left) == 0) {
					t.Errorf("stack %s: deleted %v, owns %v", st, gone, left)
				}
				if fkExists(local.StackDir(dir, st).Path()) == gone {
					t.Errorf("stack %s: local state kept = %v", st, !gone)
				}
				if gone && !strings.Contains(log.String(), "["+st+"] ") {
					t.Errorf("progress of %s is not labelled:\n%s", st, log)
				}
			}
			if len(c.deleted) == 0 && len(f.Mutating()) != 0 {
				t.Errorf("mutating calls %v", f.Mutating())
			}
		})
	}
}

func TestSweepDryRun(t *testing.T) {
	t.Parallel()
	f, dir, now := sweepFixture(t)
	o, out, _ := sweepOpts(dir)
	o.All, o.DryRun = true, true
	if err := Down(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	created := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("plan:\n%s", out)
	}
	// Instance profiles are not listed: six resources per stack.
	want0 := "(plan) would delete stack expired (6 resources, created " + created(48*time.Hour) + " by " + cloudfake.FakeOwner + ", expired " + created(time.Hour) + ")"
	want3 := "(plan) would delete stack old (6 resources, created " + created(72*time.Hour) + " by " + cloudfake.FakeOwner + ")"
	if lines[0] != want0 || lines[3] != want3 {
		t.Errorf("plan:\n%s\nwant first %q\nand last %q", out, want0, want3)
	}
	if !strings.HasPrefix(lines[1], "(plan) would delete stack fresh (6 resources, created ") || !strings.Contains(lines[1], ", expired ") {
		t.Errorf("fresh: %s", lines[1])
	}
	if m := f.Mutating(); len(m) != 0 {
		t.Errorf("dry run made mutating calls %v", m)
	}
}

func TestSweepSummaryLeftAndFailed(t *testing.T) {
	t.Parallel()
	f := newInstalledFake(t)
	dir := t.TempDir()
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	for _, st := range []string{"gone", "left", "failed"} {
		o, _, _ := upOpts(dir, st)
		mustUp(t, f, o)
		f.RetagAll(st, cloud.TagExpiresAt, past)
	}
	leftBucket := cloud.NamesFor("left", cloudfake.FakeAccount, cloudfake.FakeRegion).Bucket
	failedBucket := cloud.NamesFor("failed", cloudfake.FakeAccount, cloudfake.FakeRegion).Bucket
	f.FailIf("DeleteBucket", cloudfake.AwsErr("InternalError"), 1, false, cloudfake.ForBucket(leftBucket))
	// Deleted, but the answer is lost: nothing is left, yet the step failed.
	f.FailIf("DeleteBucket", cloudfake.AwsErr("InternalError"), 1, true, cloudfake.ForBucket(failedBucket))

	o, out, log := sweepOpts(dir)
	o.Expired, o.Yes = true, true
	err := Down(f.Ctx(), o)
	var lb *LeftBehindError
	if !errors.As(err, &lb) {
		t.Fatalf("sweep = %v, want a *LeftBehindError", err)
	}
	if !lb.Sweep || len(lb.Remaining) != 1 || lb.Remaining[0].Name != leftBucket {
		t.Errorf("left behind %+v", lb)
	}
	msg := err.Error()
	if !strings.Contains(msg, "the sweep left: S3 bucket "+leftBucket+"; run `mlstack down --state-dir "+dir+" --expired --yes` again") ||
		!strings.Contains(msg, "run `mlstack down --stack left --state-dir "+dir+" --yes` again") ||
		!strings.Contains(msg, "stack failed: deleting S3 bucket "+failedBucket) || !strings.Contains(msg, "stack left: ") {
		t.Errorf("message:\n%s", msg)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "FAILED   failed: deleting S3 bucket "+failedBucket) ||
		lines[1] != "deleted  gone" || lines[2] != "LEFT     left: still owns 1 resource" {
		t.Errorf("summary:\n%s", out)
	}
	if fkExists(local.StackDir(dir, "left").Path()) != true || fkExists(local.StackDir(dir, "gone").Path()) {
		t.Error("local state: kept for the stack left behind, removed for the one gone")
	}
	if !fkExists(local.StackDir(dir, "failed").Path()) {
		t.Error("local state of the failed stack removed")
	}
	if !strings.Contains(log.String(), "[gone] stack gone is gone") {
		t.Errorf("progress:\n%s", log)
	}
}

func TestSweepConfirmation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		confirm func(string) (bool, error)
		want    string
		deleted bool
	}{
		{"no terminal", nil, "refusing to delete 1 stack without --yes", false},
		{"answered no", func(string) (bool, error) { return false, nil }, "not confirmed", false},
		{"cannot ask", func(string) (bool, error) { return false, errors.New("no tty") }, "no tty", false},
		{"answered yes", func(string) (bool, error) { return true, nil }, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, dir, _ := sweepFixture(t)
			o, _, log := sweepOpts(dir)
			o.Expired = true
			var prompt string
			if c.confirm != nil {
				o.Confirm = func(p string) (bool, error) { prompt = p; return c.confirm(p) }
			}
			err := Down(f.Ctx(), o)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("sweep = %v, want %q", err, c.want)
			}
			if c.confirm != nil && (prompt != "Delete stack expired in eu-west-3? [y/N] " || !strings.Contains(log.String(), "stack expired (6 resources, created by "+cloudfake.FakeOwner+")")) {
				t.Errorf("prompt %q; progress:\n%s", prompt, log)
			}
			if gone := len(f.Owns("expired")) == 0; gone != c.deleted {
				t.Errorf("deleted %v", gone)
			}
			if !c.deleted && len(f.Mutating()) != 0 {
				t.Errorf("mutating calls %v", f.Mutating())
			}
		})
	}
}

func TestSweepListingFails(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"ListUsers", "ListRoles", "ListBuckets", "DescribeInstances", "DescribeSecurityGroups", "DescribeKeyPairs", "GetUser", "GetRole", "GetBucketTagging"} {
		t.Run(op, func(t *testing.T) {
			f, dir, _ := sweepFixture(t)
			f.FailNext(op, cloudfake.AwsErr("AccessDenied"), 1)
			o, _, _ := sweepOpts(dir)
			o.All, o.Yes = true, true
			err := Down(f.Ctx(), o)
			if err == nil || !cloud.HasCode(err, "AccessDenied") {
				t.Fatalf("sweep = %v", err)
			}
			if len(f.Mutating()) != 0 {
				t.Errorf("mutating calls %v", f.Mutating())
			}
		})
	}
}

func TestSweepMatch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	expired := cloud.StackInfo{CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	expiresNow := cloud.StackInfo{CreatedAt: now.Add(-time.Hour), ExpiresAt: now}
	live := cloud.StackInfo{CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(time.Hour)}
	undated := cloud.StackInfo{}
	cases := []struct {
		o    DownOptions
		i    cloud.StackInfo
		want bool
	}{
		{DownOptions{Expired: true}, expired, true},
		{DownOptions{Expired: true}, expiresNow, true},
		{DownOptions{Expired: true}, live, false},
		{DownOptions{Expired: true}, undated, false},
		{DownOptions{All: true}, undated, true},
		{DownOptions{All: true, OlderThan: time.Hour}, undated, false}, // no creation time: never "older"
		{DownOptions{All: true, OlderThan: 47 * time.Hour}, live, true},
		{DownOptions{All: true, OlderThan: 49 * time.Hour}, live, false},
		{DownOptions{Expired: true, OlderThan: 2 * time.Hour}, expiresNow, false},
		{DownOptions{}, expired, false},
	}
	for i, c := range cases {
		if got := c.o.sweepMatch(c.i, now); got != c.want {
			t.Errorf("case %d: sweepMatch(%+v) = %v", i, c.o, got)
		}
	}
}

func TestSweepStateDirUnusable(t *testing.T) {
	t.Parallel()
	f, dir, _ := sweepFixture(t)
	// The state dir cannot hold a lock: each stack fails, nothing is deleted.
	file := filepath.Join(dir, "file")
	must(t, os.WriteFile(file, nil, 0o600))
	o, out, _ := sweepOpts(file)
	o.Expired, o.Yes = true, true
	err := Down(f.Ctx(), o)
	if err == nil || !strings.Contains(err.Error(), "stack expired: state directory") || !strings.Contains(out.String(), "FAILED   expired: state directory") {
		t.Fatalf("sweep = %v\n%s", err, out)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("mutating calls %v", f.Mutating())
	}
}

// TestSweepIgnoresDecoyVouchers: an IAM user under /mlstack/ tagged for
// another stack with a past expiry, made by anyone allowed to run up,
// vouches for nothing: the sweep deletes neither the live stack nor the
// bucket a `down --keep-data` kept.
func TestSweepIgnoresDecoyVouchers(t *testing.T) {
	t.Parallel()
	other := "arn:aws:iam::123456789012:role/intruder"
	cases := []struct {
		name     string
		keptData bool   // the victim was taken down with --keep-data
		owner    string // the decoy's owner tag
		anyOwner bool
	}{
		{"live stack, any owner", false, other, true},
		{"live stack, forged owner", false, cloudfake.FakeOwner, false},
		{"kept bucket, any owner", true, other, true},
		{"kept bucket, forged owner", true, cloudfake.FakeOwner, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newInstalledFake(t)
			dir := upStack(t, f, "victim")
			if c.keptData {
				d, _, dlog := downOpts(dir, "victim")
				d.Yes, d.KeepData = true, true
				if err := Down(f.Ctx(), d); err != nil {
					t.Fatalf("down --keep-data: %v\n%s", err, dlog)
				}
			}
			before := slices.Sorted(slices.Values(f.Owns("victim")))
			if len(before) == 0 {
				t.Fatal("the victim owns nothing to begin with")
			}
			tags := cloud.StackTags("victim", cloudfake.FakeRegion, c.owner, time.Now().Add(-48*time.Hour), 0)
			tags["mlstack:owner"] = c.owner
			tags[cloud.TagExpiresAt] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
			f.AddUser("aaa-decoy", tags)
			f.ResetCalls()

			// The listing alone (what a dry run shows) must not count the decoy.
			stacks, err := listStacks(f.Ctx(), f.Session(), []string{cloudfake.FakeRegion})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(stacks, func(st cloud.StackInfo) bool { return st.Stack == "victim" })
			if i < 0 || stacks[i].Expired(time.Now()) || stacks[i].Orphan != c.keptData ||
				!slices.ContainsFunc(stacks[i].Resources, func(r cloud.Resource) bool { return r.Name == "aaa-decoy" && r.State == cloud.StateLookalike }) {
				t.Errorf("listing: %+v", stacks)
			}

			o, out, log := sweepOpts(dir)
			o.Expired, o.Yes, o.AnyOwner = true, true, c.anyOwner
			if err := Down(f.Ctx(), o); err != nil {
				t.Fatalf("sweep: %v\n%s", err, log)
			}
			if strings.Contains(out.String(), "deleted") || !slices.Equal(slices.Sorted(slices.Values(f.Owns("victim"))), before) {
				t.Errorf("the decoy swept the victim: %s; owns %v, had %v\n%s", out, f.Owns("victim"), before, log)
			}
			if m := f.Mutating(); len(m) != 0 {
				t.Errorf("mutating calls %v", m)
			}
		})
	}
}

// TestSweepExpiredOwnerFilter: `down --expired` sweeps another principal's
// expired stack only with --any-owner.
func TestSweepExpiredOwnerFilter(t *testing.T) {
	t.Parallel()
	other := "arn:aws:iam::123456789012:role/ci"
	for _, anyOwner := range []bool{false, true} {
		t.Run(fmt.Sprintf("any-owner=%v", anyOwner), func(t *testing.T) {
			t.Parallel()
			f := newInstalledFake(t)
			f.SetCaller(other)
			dir := upStack(t, f, "theirs")
			f.SetCaller(cloudfake.FakeOwner)
			f.RetagAll("theirs", cloud.TagExpiresAt, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
			o, out, log := sweepOpts(dir)
			o.Expired, o.Yes, o.AnyOwner = true, true, anyOwner
			if err := Down(f.Ctx(), o); err != nil {
				t.Fatalf("sweep: %v\n%s", err, log)
			}
			if gone := len(f.Owns("theirs")) == 0; gone != anyOwner {
				t.Errorf("deleted %v, want %v: %s\n%s", gone, anyOwner, out, log)
			}
			if !anyOwner && !strings.Contains(log.String(), "leaving stack theirs alone: created by "+other) {
				t.Errorf("progress:\n%s", log)
			}
		})
	}
}

// TestSweepRechecksBeforeDeleting: what the stack's own IAM user and role
// say is read again under the lock; a stack no longer expired, or no
// longer the caller's, since the listing is left alone and named.
func TestSweepRechecksBeforeDeleting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, value, want string
	}{
		{"expiry moved on", cloud.TagExpiresAt, time.Now().Add(4 * time.Hour).UTC().Format(time.RFC3339),
			"leaving stack expired alone: it no longer is expired"},
		{"owner changed", "mlstack:owner", "arn:aws:iam::123456789012:role/ci",
			"leaving stack expired alone: created by arn:aws:iam::123456789012:role/ci"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, dir, _ := sweepFixture(t)
			o, out, log := sweepOpts(dir)
			o.Expired = true
			// Asked after the listing, before the deletion: the retag lands between.
			o.Confirm = func(string) (bool, error) { f.RetagAll("expired", c.key, c.value); return true, nil }
			if err := Down(f.Ctx(), o); err != nil {
				t.Fatalf("sweep: %v\n%s", err, log)
			}
			if len(f.Owns("expired")) == 0 || !strings.HasPrefix(out.String(), "SKIPPED  expired: "+c.want) {
				t.Errorf("summary:\n%s\nprogress:\n%s", out, log)
			}
			if m := f.Mutating(); len(m) != 0 {
				t.Errorf("mutating calls %v", m)
			}
		})
	}
}
