package provision

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mlstack/mlstack/provision/local"
)

func TestEnsureKeyPair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	_, pub, err := local.NewSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}

	f := cloudfake.NewFakeAWS()
	k, err := cloud.FindKeyPair(ctx, f, n, string(pub))
	if err != nil || k.ID != "" || k.TagIDs() != nil {
		t.Fatalf("findKeyPair of nothing = %+v, %v", k, err)
	}
	log, out := bufProgress()
	if err := cloud.EnsureKeyPair(ctx, f, k, n, pub, tags, log); err != nil {
		t.Fatal(err)
	}
	kp := f.KeyPair(n.KeyPair)
	if kp == nil || string(kp.Material) != string(pub) || cloud.EC2TagMap(kp.Kp.Tags)[cloud.TagStack] != "demo" || cloud.EC2TagMap(kp.Kp.Tags)["Name"] != n.KeyPair {
		t.Fatalf("key pair %+v", kp)
	}
	if k.ID != aws.ToString(kp.Kp.KeyPairId) || !slices.Equal(k.TagIDs(), []string{k.ID}) {
		t.Errorf("found id %q, tag ids %v", k.ID, k.TagIDs())
	}
	if !strings.Contains(out.String(), "importing ed25519 key pair mlstack-demo") {
		t.Errorf("progress %s", out)
	}
	// Present: nothing to do.
	f.ResetCalls()
	again, err := cloud.FindKeyPair(ctx, f, n, string(pub))
	if err != nil || again.ID != k.ID {
		t.Fatalf("findKeyPair = %+v, %v", again, err)
	}
	if err := cloud.EnsureKeyPair(ctx, f, again, n, pub, tags, log); err != nil || len(f.Mutating()) != 0 {
		t.Errorf("ensure of a present key pair: %v, %v", err, f.Mutating())
	}

	// Imported meanwhile by another run: fine. Another error: not.
	f = cloudfake.NewFakeAWS()
	f.AddKeyPair(n.KeyPair, tags)
	if err := cloud.EnsureKeyPair(ctx, f, &cloud.KeyPairFound{}, n, pub, tags, log); err != nil {
		t.Errorf("duplicate: %v", err)
	}
	f = cloudfake.NewFakeAWS()
	if err := cloud.EnsureKeyPair(ctx, f, &cloud.KeyPairFound{}, n, []byte("not a key"), tags, log); err == nil || !strings.Contains(err.Error(), "importing key pair mlstack-demo") {
		t.Errorf("bad key: %v", err)
	}
}

func TestDeleteKeyPair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())

	f := cloudfake.NewFakeAWS()
	f.AddKeyPair(n.KeyPair, tags)
	log, out := bufProgress()
	if err := deleteKind(ctx, f, n, cloud.KindKeyPair, log); err != nil || f.KeyPair(n.KeyPair) != nil {
		t.Fatalf("deleteKeyPair = %v", err)
	}
	if !strings.Contains(out.String(), "deleting key pair mlstack-demo") {
		t.Errorf("progress %s", out)
	}
	// Gone: done.
	if err := deleteKind(ctx, f, n, cloud.KindKeyPair, log); err != nil {
		t.Errorf("second delete: %v", err)
	}
	// Not ours: left alone.
	f = cloudfake.NewFakeAWS()
	f.AddKeyPair(n.KeyPair, nil)
	log, out = bufProgress()
	if err := deleteKind(ctx, f, n, cloud.KindKeyPair, log); err != nil || f.KeyPair(n.KeyPair) == nil || !strings.Contains(out.String(), "leaving key pair mlstack-demo alone") {
		t.Errorf("foreign key pair: %v, %s", err, out)
	}
	for _, c := range []struct{ op, want string }{
		{"DescribeKeyPairs", "reading key pair"},
		{"DeleteKeyPair", "deleting key pair"},
	} {
		f = cloudfake.NewFakeAWS()
		f.AddKeyPair(n.KeyPair, tags)
		f.FailNext(c.op, cloudfake.AwsErr("UnauthorizedOperation"), 1)
		if err := deleteKind(ctx, f, n, cloud.KindKeyPair, log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
	f = cloudfake.NewFakeAWS()
	f.AddKeyPair(n.KeyPair, tags)
	f.FailNext("DeleteKeyPair", cloudfake.AwsErr("InvalidKeyPair.NotFound"), 1)
	if err := deleteKind(ctx, f, n, cloud.KindKeyPair, log); err != nil {
		t.Errorf("deleted meanwhile: %v", err)
	}
}
