package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestDownKeepDataThenUp: down --keep-data against moto stops the instance
// before terminating it, leaves the bucket with its artifacts and backups
// and nothing else; ls shows it as an orphan no sweep takes; up makes the
// stack again around it and says its server restores the newest backup;
// plain down then leaves nothing.
func TestDownKeepDataThenUp(t *testing.T) {
	e := newEnv(t)
	const stack = "keep"
	bucket := "mlstack-keep-123456789012-eu-west-3-an"
	flags := e.stackFlags(stack)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	for _, k := range []string{"artifacts/1/r/artifacts/model.pkl", "backups/20261127T120000.000001Z/mlflow.db.gz",
		"backups/20261127T120000.000001Z/basic_auth.db.gz", "backups/20261127T120000.000001Z/manifest.json"} {
		_, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("x")})
		must(t, err)
	}

	doc := decodeStack(t, e.ok(append([]string{"status", "--output", "json"}, flags...)...).stdout)
	if doc.NewestBackup == nil || !doc.NewestBackup.Equal(time.Date(2026, 11, 27, 12, 0, 0, 1000, time.UTC)) {
		t.Errorf("status newest_backup %v", doc.NewestBackup)
	}
	e.rec.reset()
	res := e.ok(append([]string{"down", "--keep-data", "--yes"}, flags...)...)
	var stop, term int
	for i, c := range e.rec.calls() {
		switch c.Action {
		case "StopInstances":
			stop = i + 1
		case "TerminateInstances":
			term = i + 1
		}
	}
	if stop == 0 || term < stop {
		t.Errorf("down --keep-data: StopInstances at %d, TerminateInstances at %d; want the stop first", stop, term)
	}
	if !strings.Contains(res.stderr, "kept S3 bucket "+bucket+" with the artifacts and 1 backup of the tracking data") {
		t.Errorf("down --keep-data does not say what it kept:\n%s", res.stderr)
	}
	e.assertNothingLeft("bucket " + bucket)
	out, err := e.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	must(t, err)
	if len(out.Contents) < 5 { // the four above and the install lock
		t.Errorf("the kept bucket holds %d objects", len(out.Contents))
	}
	if ls := e.ls(); len(ls) != 1 || ls[0].Stack != stack || !ls[0].Orphan {
		t.Errorf("ls of a kept stack: %+v", ls)
	}
	e.ok("down", "--all", "--yes", "--state-dir", e.stateDir)
	e.assertNothingLeft("bucket " + bucket) // no sweep takes kept data

	up := e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	if !strings.Contains(up.stderr, "the kept bucket holds 1 backup of the tracking data (the newest from 2026-11-27T12:00:00Z") {
		t.Errorf("up of a kept stack does not say its server restores:\n%s", up.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestRestoreFrom: mlstack restore --from a chosen backup, against moto:
// a name that is no complete backup is refused with the newest ones named;
// without --yes it asks (no terminal: refused, nothing changed); with
// --yes it stops the old instance, copies the chosen backup, byte for byte,
// to a folder newer than every other (the one the stop made included), and
// launches the new instance that restores it; the old one goes.
func TestRestoreFrom(t *testing.T) {
	e := newEnv(t)
	const stack = "rest"
	bucket := "mlstack-rest-123456789012-eu-west-3-an"
	flags := e.stackFlags(stack)
	e.publishForEach(stack)
	e.ok(append([]string{"up", "--allow-cidr", allowCIDR}, flags...)...)
	ctx := context.Background()
	put := func(key, body string) {
		_, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		must(t, err)
	}
	const old, newer, torn = "20261127T100000.000001Z", "20261127T110000.000001Z", "20261127T120000.000001Z"
	for _, stamp := range []string{old, newer} {
		put("backups/"+stamp+"/mlflow.db.gz", "db of "+stamp)
		put("backups/"+stamp+"/basic_auth.db.gz", "auth of "+stamp)
		put("backups/"+stamp+"/manifest.json", `{"of":"`+stamp+`"}`)
	}
	put("backups/"+torn+"/mlflow.db.gz", "killed before its manifest")

	for _, bad := range []string{torn, "nope"} {
		if res := e.mlstack(append([]string{"restore", "--from", bad, "--yes"}, flags...)...); res.code != 2 || !strings.Contains(res.stderr, newer) {
			t.Errorf("restore --from %s: exit %d\n%s", bad, res.code, res.stderr)
		}
	}
	e.rec.reset()
	if res := e.mlstack(append([]string{"restore", "--from", old}, flags...)...); res.code != 2 || !strings.Contains(res.stderr, "restore backup "+old) ||
		len(e.rec.mutating()) != 0 {
		t.Fatalf("restore without --yes: exit %d, mutating %v\n%s", res.code, e.rec.mutating(), res.stderr)
	}
	before := e.instancesOf(stack)
	e.ok(append([]string{"restore", "--from", "s3://" + bucket + "/backups/" + old + "/", "--yes"}, flags...)...)
	after := e.instancesOf(stack)
	for id := range before {
		if after[id] != "" || len(after) != 1 {
			t.Errorf("after restore: %v (old %s)", after, id)
		}
	}
	out, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("backups/")})
	must(t, err)
	newest := ""
	for _, o := range out.Contents {
		if k := aws.ToString(o.Key); strings.HasSuffix(k, "/manifest.json") && k > newest {
			newest = k
		}
	}
	folder := strings.TrimSuffix(newest, "manifest.json")
	if folder <= "backups/"+torn+"/" {
		t.Fatalf("the copy %s is not the newest backup", folder)
	}
	for name, want := range map[string]string{"mlflow.db.gz": "db of " + old, "basic_auth.db.gz": "auth of " + old, "manifest.json": `{"of":"` + old + `"}`} {
		got, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(folder + name)})
		must(t, err)
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(b) != want {
			t.Errorf("%s%s = %q, want %q", folder, name, b, want)
		}
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}
