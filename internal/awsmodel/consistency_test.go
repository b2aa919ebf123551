package awsmodel

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestConsistencyOff(t *testing.T) {
	var c Consistency
	c.Created(Instance, "i-1")
	if err := c.Use(Instance, "i-1"); err != nil || !c.Listed("i-1") || len(c.Pending()) != 0 {
		t.Fatalf("For 0: %v, listed %v, pending %v", err, c.Listed("i-1"), c.Pending())
	}
}

func TestConsistencyUse(t *testing.T) {
	for _, k := range []struct {
		kind        Kind
		id, code    string
		status      int
		messagePart string
	}{
		{Instance, "i-0abc", "InvalidInstanceID.NotFound", 400, "The instance ID 'i-0abc' does not exist"},
		{Group, "sg-0abc", "InvalidGroup.NotFound", 400, "The security group 'sg-0abc' does not exist"},
		{KeyPair, "mlstack-x", "InvalidKeyPair.NotFound", 400, "The key pair 'mlstack-x' does not exist"},
		{Bucket, "b", "NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist"},
		{Profile, "mlstack-x-server", "InvalidParameterValue", 400, "Invalid IAM Instance Profile name"},
		{Kind("volume"), "vol-1", "InvalidID", 400, "vol-1"},
	} {
		c := Consistency{For: 2}
		c.Created(k.kind, k.id)
		c.Created(k.kind, "") // no id: nothing
		if err := c.Use("other", k.id); err != nil {
			t.Errorf("%s named as another kind: %v", k.kind, err)
		}
		var got []string
		for range 3 {
			err := c.Use(k.kind, k.id)
			got = append(got, code(err))
			if e, ok := err.(*Error); ok && (e.Status != k.status || !strings.Contains(e.Message, k.messagePart)) {
				t.Errorf("%s: %+v", k.kind, e)
			}
		}
		if want := []string{k.code, k.code, ""}; !slices.Equal(got, want) {
			t.Errorf("%s: answers %q, want %q", k.kind, got, want)
		}
	}
}

func TestConsistencyListedAndPending(t *testing.T) {
	c := Consistency{For: 1}
	c.Created(Instance, "i-2")
	c.Created(Group, "sg-1")
	c.Created(Instance, "i-1")
	if got := c.Pending(); !slices.Equal(got, []ID{{Instance, "i-1"}, {Instance, "i-2"}, {Group, "sg-1"}}) {
		t.Errorf("pending %v", got)
	}
	if c.Listed("i-1") || !c.Listed("i-1") || !c.Listed("i-unknown") {
		t.Error("a new instance is left out of one listing, then shown")
	}
	if err := c.Use(Instance, "i-1"); err != nil {
		t.Errorf("after the listing used it up: %v", err)
	}
	if got := c.Pending(); len(got) != 2 {
		t.Errorf("pending %v", got)
	}
}
