package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision"
	"github.com/mlstack/mlstack/templates"
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

// TestBackupNow: mlstack backup runs the server's backup over SSH (a real
// OpenSSH server with the stack's pinned host key; the remote command runs
// the real backup script, with the MLflow venv's Python, on sqlite
// databases, against moto) and prints the backup's place, complete in the
// bucket; again with nothing changed, the newest one; without SSH it says
// why and when the server backs up by itself.
func TestBackupNow(t *testing.T) {
	venv := os.Getenv("MLSTACK_TEST_MLFLOW_VENV")
	if venv == "" {
		testenv.Missing(t, "no MLflow venv (MLSTACK_TEST_MLFLOW_VENV is not set; scripts/mlflow-venv.sh makes one)")
	}
	e := newEnv(t)
	const stack = "bak"
	bucket := "mlstack-bak-123456789012-eu-west-3-an"
	flags := e.stackFlags(stack)
	if res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...); res.code != 0 {
		t.Fatal(res.stderr)
	}
	if res := e.mlstack(append([]string{"backup"}, flags...)...); res.code != 1 || !strings.Contains(res.stderr, "SSH is off") ||
		!strings.Contains(res.stderr, "within 5 minutes of a change") {
		t.Errorf("backup without SSH: exit %d\n%s", res.code, res.stderr)
	}
	up := append([]string{"up", "--no-wait", "--ssh", "--allow-cidr", allowCIDR}, flags...)
	e.ok(up...)
	hostKey := e.publishNow(stack)
	e.ok(up...)
	st := stateFile(t, filepath.Join(e.stateDir, stack))
	srv := startSSHD(t, hostKey, []byte(st.SSHPublicKey))

	// The instance's data and its backup unit, played by the script itself.
	data, script := t.TempDir(), filepath.Join(t.TempDir(), "mlstack_backup.py")
	src, err := templates.FS.ReadFile("mlstack_backup.py")
	must(t, err)
	must(t, os.WriteFile(script, src, 0o644))
	for _, db := range []string{"mlflow.db", "basic_auth.db"} {
		cmd := exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('create table t (x)'); c.commit()", filepath.Join(data, db))
		must(t, cmd.Run())
	}
	remote := provision.ShellLine([]string{"env", "MLSTACK_DATA_DIR=" + data, "MLSTACK_BACKUPS=s3://" + bucket + "/backups/",
		"AWS_ENDPOINT_URL=" + e.moto, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=" + testRegion,
		filepath.Join(venv, "bin", "python"), script, "backup"}) + " 2>&1"
	backup := append(append([]string{"backup"}, flags...), "--ssh-addr", srv.Addr, "--ssh-user", srv.User, "--backup-command", remote)

	res := e.ok(backup...)
	place := strings.TrimSpace(res.stdout)
	if !strings.HasPrefix(place, "s3://"+bucket+"/backups/") || !strings.Contains(res.stderr, "restore --stack bak") {
		t.Fatalf("backup printed %q\n%s", place, res.stderr)
	}
	key := strings.TrimPrefix(place, "s3://"+bucket+"/") + "manifest.json"
	_, err = e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	must(t, err)
	again := e.ok(backup...)
	if strings.TrimSpace(again.stdout) != place || !strings.Contains(again.stderr, "nothing changed since the newest backup") {
		t.Errorf("a second backup with nothing changed: %q\n%s", again.stdout, again.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}
