package cloud_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

func TestFindKeyPairCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	cases := []struct {
		name string
		seed func(f *cloudfake.FakeAWS)
		want string
		no   bool
	}{
		{"untagged", func(f *cloudfake.FakeAWS) { f.AddKeyPair(n.KeyPair, nil) }, `key pair "mlstack-demo" exists but is not tagged mlstack:stack=demo`, true},
		{"another stack's", func(f *cloudfake.FakeAWS) { f.AddKeyPair(n.KeyPair, cloudfake.StackTagsFor("other", time.Now())) }, "is not tagged", true},
		{"DescribeKeyPairs fails", func(f *cloudfake.FakeAWS) {
			f.FailNext("DescribeKeyPairs", cloudfake.AwsErr("RequestLimitExceeded"), 1)
		}, "reading key pair mlstack-demo", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := cloudfake.NewFakeAWS()
			c.seed(f)
			_, err := cloud.FindKeyPair(ctx, f, n, "")
			var no *cloud.NotOwnedError
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &no) != c.no {
				t.Fatalf("findKeyPair = %v", err)
			}
		})
	}
	// Some EC2 implementations answer an unknown name with an empty list.
	k, err := cloud.FindKeyPair(ctx, emptyKeyPairs{cloudfake.NewFakeAWS()}, n, "")
	if err != nil || k.ID != "" {
		t.Errorf("empty answer: %+v, %v", k, err)
	}
}

func TestKeyPairInventoryAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f := cloudfake.NewFakeAWS()
	f.AddKeyPair(n.KeyPair, cloudfake.StackTagsFor("demo", time.Now()))
	f.AddKeyPair("mlstack-other", cloudfake.StackTagsFor("other", time.Now()))
	f.AddKeyPair("laptop", nil)
	rows, err := cloud.KeyPairInventory(ctx, f, n)
	if err != nil || len(rows) != 1 || rows[0].Kind != cloud.KindKeyPair || rows[0].Name != n.KeyPair || rows[0].State != cloud.StateExists {
		t.Errorf("inventory %v %v", rows, err)
	}
	set := cloud.NewStackSet(cloudfake.FakeAccount)
	if err := cloud.ListKeyPairs(ctx, f, cloudfake.FakeRegion, set); err != nil {
		t.Fatal(err)
	}
	if got := set.Sorted(); len(got) != 2 || got[0].Stack != "demo" || got[1].Stack != "other" || len(got[0].Resources) != 1 {
		t.Errorf("listed %+v", got)
	}
	f.FailNext("DescribeKeyPairs", cloudfake.AwsErr("ServiceUnavailable"), 1)
	if _, err := cloud.KeyPairInventory(ctx, f, n); err == nil || !strings.Contains(err.Error(), "reading key pair mlstack-demo") {
		t.Errorf("inventory = %v", err)
	}
}

// emptyKeyPairs answers every DescribeKeyPairs with an empty list.
type emptyKeyPairs struct{ *cloudfake.FakeAWS }

func (emptyKeyPairs) DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	return &ec2.DescribeKeyPairsOutput{}, nil
}
