package cloud_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

func TestFindUserErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	for _, c := range []struct{ op, want string }{
		{"GetUser", "reading IAM user mlstack-demo"},
		{"ListAccessKeys", "listing access keys of mlstack-demo"},
		{"GetUserPolicy", "reading policy of mlstack-demo"},
	} {
		f := cloudfake.NewFakeAWS()
		f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()))
		f.FailNext(c.op, cloudfake.AwsErr("ServiceFailure"), 1)
		if _, err := cloud.FindUser(ctx, f, n, "{}"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s failing: %v", c.op, err)
		}
	}
}

func TestUserInventoryListAndRetag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	f := cloudfake.NewFakeAWS()
	if rows, _, err := cloud.UserInventory(ctx, f, n); err != nil || rows != nil {
		t.Errorf("inventory of nothing: %v %v", rows, err)
	}
	f.AddUser(n.User, cloudfake.StackTagsFor("demo", time.Now()))
	f.AddUser("mlstack-far", cloud.StackTags("far", "ap-south-1", cloudfake.FakeOwner, time.Now(), 0))
	f.AddUser("mlstack-untagged", nil)
	rows, tags, err := cloud.UserInventory(ctx, f, n)
	if err != nil || len(rows) != 1 || rows[0].Kind != cloud.KindUser || rows[0].Name != n.User || rows[0].State != cloud.StateExists || tags[cloud.TagStack] != "demo" {
		t.Errorf("inventory %v %v", rows, err)
	}
	if err := cloud.RetagUser(ctx, f, n, "2031-01-01T00:00:00Z"); err != nil || cloud.IAMTagMap(f.Users[n.User].User.Tags)[cloud.TagExpiresAt] != "2031-01-01T00:00:00Z" {
		t.Errorf("retag: %v %v", err, f.Users[n.User].User.Tags)
	}
	f.FailNext("TagUser", cloudfake.AwsErr("AccessDenied"), 1)
	if err := cloud.RetagUser(ctx, f, n, "x"); err == nil || !strings.Contains(err.Error(), "moving the expiry of IAM user") {
		t.Errorf("retag = %v", err)
	}
	set := cloud.NewStackSet(cloudfake.FakeAccount)
	if err := cloud.ListUsers(ctx, f, set, map[string]bool{cloudfake.FakeRegion: true}); err != nil {
		t.Fatal(err)
	}
	if got := set.Sorted(); len(got) != 1 || got[0].Stack != "demo" || got[0].ExpiresAt.Year() != 2031 {
		t.Errorf("listed %+v", got)
	}
	f.FailNext("GetUser", cloudfake.AwsErr("ServiceFailure"), 1)
	if _, _, err := cloud.UserInventory(ctx, f, n); err == nil {
		t.Error("inventory hid an error")
	}
}

func TestRoleInventoryListAndRetag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := cloud.NamesFor("demo", cloudfake.FakeAccount, cloudfake.FakeRegion)
	tags := cloudfake.StackTagsFor("demo", time.Now())
	f := cloudfake.NewFakeAWS()
	if rows, _, err := cloud.RoleInventory(ctx, f, n); err != nil || rows != nil {
		t.Errorf("inventory of nothing %v %v", rows, err)
	}
	f.AddRole(n.Role, tags)
	f.AddProfile(n.Profile, tags, n.Role)
	f.AddRole("mlstack-x-server", cloud.StackTags("x", "us-west-2", cloudfake.FakeOwner, time.Now(), 0))
	rows, _, err := cloud.RoleInventory(ctx, f, n)
	if err != nil || len(rows) != 2 || rows[0].Kind != cloud.KindRole || rows[1].Kind != cloud.KindProfile {
		t.Errorf("inventory %v %v", rows, err)
	}
	if err := cloud.RetagRole(ctx, f, &cloud.RoleFound{RoleExists: true, ProfileExists: true}, n, "2032-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if cloud.IAMTagMap(f.Roles[n.Role].Role.Tags)[cloud.TagExpiresAt] == "" || cloud.IAMTagMap(f.Profiles[n.Profile].Prof.Tags)[cloud.TagExpiresAt] == "" {
		t.Error("not retagged")
	}
	f.ResetCalls()
	if err := cloud.RetagRole(ctx, f, &cloud.RoleFound{}, n, "x"); err != nil || len(f.Calls()) != 0 {
		t.Errorf("retag of nothing: %v %v", err, f.Calls())
	}
	for _, op := range []string{"TagRole", "TagInstanceProfile"} {
		f.FailNext(op, cloudfake.AwsErr("AccessDenied"), 1)
		if err := cloud.RetagRole(ctx, f, &cloud.RoleFound{RoleExists: true, ProfileExists: true}, n, "x"); err == nil || !strings.Contains(err.Error(), "moving the expiry") {
			t.Errorf("%s failing: %v", op, err)
		}
	}
	set := cloud.NewStackSet(cloudfake.FakeAccount)
	if err := cloud.ListRoles(ctx, f, set, map[string]bool{cloudfake.FakeRegion: true, "us-west-2": true}); err != nil {
		t.Fatal(err)
	}
	if got := set.Sorted(); len(got) != 2 || got[0].Stack != "demo" || got[1].Region != "us-west-2" {
		t.Errorf("listed %+v", got)
	}
	for _, op := range []string{"GetRole", "GetInstanceProfile"} {
		f.FailNext(op, cloudfake.AwsErr("ServiceFailure"), 1)
		if _, _, err := cloud.RoleInventory(ctx, f, n); err == nil {
			t.Errorf("%s failing: inventory hid it", op)
		}
	}
	f.FailNext("GetRole", cloudfake.AwsErr("ServiceFailure"), 1)
	if err := cloud.ListRoles(ctx, f, set, map[string]bool{}); err == nil {
		t.Error("listRoles hid an error")
	}
}
