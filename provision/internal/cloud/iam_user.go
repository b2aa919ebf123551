package cloud

// The stack's IAM user mlstack-<stack> (path /mlstack/): a bucket-only inline
// policy and exactly one access key, whose secret only the local state holds.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// UserAPI is the part of IAM the stack user needs.
type UserAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListUsers(context.Context, *iam.ListUsersInput, ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	CreateUser(context.Context, *iam.CreateUserInput, ...func(*iam.Options)) (*iam.CreateUserOutput, error)
	TagUser(context.Context, *iam.TagUserInput, ...func(*iam.Options)) (*iam.TagUserOutput, error)
	DeleteUser(context.Context, *iam.DeleteUserInput, ...func(*iam.Options)) (*iam.DeleteUserOutput, error)
	GetUserPolicy(context.Context, *iam.GetUserPolicyInput, ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	PutUserPolicy(context.Context, *iam.PutUserPolicyInput, ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	DeleteUserPolicy(context.Context, *iam.DeleteUserPolicyInput, ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(context.Context, *iam.CreateAccessKeyInput, ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	DeleteAccessKey(context.Context, *iam.DeleteAccessKeyInput, ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	DetachUserPolicy(context.Context, *iam.DetachUserPolicyInput, ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error)
	ListGroupsForUser(context.Context, *iam.ListGroupsForUserInput, ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)
	RemoveUserFromGroup(context.Context, *iam.RemoveUserFromGroupInput, ...func(*iam.Options)) (*iam.RemoveUserFromGroupOutput, error)
	GetLoginProfile(context.Context, *iam.GetLoginProfileInput, ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)
	DeleteLoginProfile(context.Context, *iam.DeleteLoginProfileInput, ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error)
}

// iamWait bounds retries of IAM's eventual consistency: a user, role or
// profile created a moment ago can be invisible to the next call.
const iamWait = 30 * time.Second

// UserFound is what exists of the stack user.
type UserFound struct {
	Exists   bool
	Keys     []string // access key IDs
	PolicyOK bool
}

// FindUser reads the stack user; a same-named user without the stack tag is a notOwnedError.
func FindUser(ctx context.Context, api UserAPI, n Names, policy string) (*UserFound, error) {
	out, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	if HasCode(err, "NoSuchEntity") {
		return &UserFound{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading IAM user %s: %w", n.User, err)
	}
	return FindUserFrom(ctx, api, n, policy, out.User)
}

// FindUserFrom is findUser once GetUser has answered (user nil: no such
// user): openStack's findHome read it already.
func FindUserFrom(ctx context.Context, api UserAPI, n Names, policy string, user *iamtypes.User) (*UserFound, error) {
	if user == nil {
		return &UserFound{}, nil
	}
	var err error
	if !owned(IAMTagMap(user.Tags), n.Stack) {
		return nil, &NotOwnedError{Kind: "IAM user", Name: n.User, Stack: n.Stack}
	}
	if err := userDrift(ctx, api, n); err != nil {
		return nil, err
	}
	u := &UserFound{Exists: true}
	if u.Keys, err = accessKeys(ctx, api, n.User); err != nil {
		return nil, err
	}
	pol, err := api.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(n.User), PolicyName: aws.String(n.Policy)})
	switch {
	case HasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading policy of %s: %w", n.User, err)
	default:
		u.PolicyOK = SamePolicy(aws.ToString(pol.PolicyDocument), policy)
	}
	return u, nil
}

// userDrift refuses a user with more than its bucket-only inline policy:
// another inline policy, a managed policy or a group would hand whoever
// holds the stack's client keys more than the bucket.
func userDrift(ctx context.Context, api UserAPI, n Names) error {
	drift := func(what, fix string) error { return &DriftError{Kind: "IAM user", Name: n.User, What: what, Fix: fix} }
	inline, err := listUserPolicies(ctx, api, n.User)
	if err != nil {
		return fmt.Errorf("listing policies of IAM user %s: %w", n.User, err)
	}
	for _, p := range inline {
		if p != n.Policy {
			return drift("has inline policy "+p, fmt.Sprintf("delete it: `aws iam delete-user-policy --user-name %s --policy-name %s`", n.User, p))
		}
	}
	att, err := listAttachedUserPolicies(ctx, api, n.User)
	if err != nil {
		return fmt.Errorf("listing attached policies of IAM user %s: %w", n.User, err)
	}
	for _, p := range att {
		arn := aws.ToString(p.PolicyArn)
		return drift("has managed policy "+arn+" attached", fmt.Sprintf("detach it: `aws iam detach-user-policy --user-name %s --policy-arn %s`", n.User, arn))
	}
	groups, err := listGroupsForUser(ctx, api, n.User)
	if err != nil {
		return fmt.Errorf("listing groups of IAM user %s: %w", n.User, err)
	}
	for _, g := range groups {
		name := aws.ToString(g.GroupName)
		return drift("is a member of group "+name, fmt.Sprintf("remove it: `aws iam remove-user-from-group --user-name %s --group-name %s`", n.User, name))
	}
	return nil
}

func accessKeys(ctx context.Context, api UserAPI, user string) ([]string, error) {
	meta, err := listAccessKeys(ctx, api, user)
	if err != nil {
		return nil, fmt.Errorf("listing access keys of %s: %w", user, err)
	}
	var keys []string
	for _, k := range meta {
		keys = append(keys, aws.ToString(k.AccessKeyId))
	}
	return keys, nil
}

// Plan says in words what ensureUser would do; wantKey is false for
// proxied artifacts, where clients need no AWS key.
func (u *UserFound) Plan(n Names, wantKey bool) []PlanStep {
	if !u.Exists {
		if !wantKey {
			return []PlanStep{Step(KindUser, n.User, "create IAM user %s with a bucket-only policy and no access key (artifacts proxied)", n.User)}
		}
		return []PlanStep{Step(KindUser, n.User, "create IAM user %s with a bucket-only policy and one access key", n.User)}
	}
	var p []PlanStep
	if !u.PolicyOK {
		p = append(p, Step(KindUser, n.User, "set the bucket-only policy of IAM user %s", n.User))
	}
	switch {
	case wantKey && len(u.Keys) == 0:
		p = append(p, Step(KindUser, n.User, "create an access key for %s", n.User))
	case !wantKey && len(u.Keys) > 0:
		p = append(p, Step(KindUser, n.User, "delete %s %s of %s (artifacts proxied: clients need no AWS key)",
			PluralWord(len(u.Keys), "access key"), strings.Join(u.Keys, ", "), n.User))
	}
	return p
}

// EnsureUserInput is what ensureUser needs besides the API.
type EnsureUserInput struct {
	Names  Names
	Policy string
	Tags   map[string]string
	// KnownKey is the access key ID whose secret is in local state ("" if none).
	KnownKey string
	// SaveKey persists a new key before anything else happens, so a crash
	// cannot leave a key whose secret is lost.
	SaveKey func(id, secret string) error
	// NoKey: artifacts are proxied, the user keeps no key; forgetKey
	// drops it from the local state once deleted.
	NoKey     bool
	ForgetKey func() error
	Log       Log
}

// EnsureUser creates the user, its inline policy and exactly one access key.
func EnsureUser(ctx context.Context, api UserAPI, u *UserFound, in EnsureUserInput) error {
	n := in.Names
	if !u.Exists {
		in.Log.Step("creating IAM user %s", n.User)
		_, err := api.CreateUser(ctx, &iam.CreateUserInput{
			UserName: aws.String(n.User), Path: aws.String(IAMPath), Tags: IAMTags(in.Tags),
		})
		if HasCode(err, "EntityAlreadyExists") {
			// Another run made it meanwhile: it must still be ours.
			if _, ferr := FindUser(ctx, api, n, in.Policy); ferr != nil {
				return ferr
			}
		} else if err != nil {
			return fmt.Errorf("creating IAM user %s: %w", n.User, err)
		}
	}
	if !u.PolicyOK {
		in.Log.Step("setting bucket-only policy on IAM user %s", n.User)
		err := RetryOn(ctx, iamWait, isIAMPropagation, nil, func() error {
			_, err := api.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
				UserName: aws.String(n.User), PolicyName: aws.String(n.Policy), PolicyDocument: aws.String(in.Policy),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("setting policy of IAM user %s: %w", n.User, err)
		}
	}
	switch {
	case in.NoKey:
		return deleteAllKeys(ctx, api, n.User, u.Keys, in)
	case len(u.Keys) == 0:
		return createAccessKey(ctx, api, in)
	case in.KnownKey != "" && slices.Contains(u.Keys, in.KnownKey):
		return deleteStrayKeys(ctx, api, n.User, u.Keys, in.KnownKey, in.Log)
	default:
		return fmt.Errorf("IAM user %s has %s %s but no secret for it in the local state: "+
			"run mlstack on the machine that created the stack, or remove the stack and create it again",
			n.User, PluralWord(len(u.Keys), "access key"), strings.Join(u.Keys, ", "))
	}
}

// deleteAllKeys removes every key of the user (proxied artifacts): the
// clients' artifacts go through the server, which signs with its role.
func deleteAllKeys(ctx context.Context, api UserAPI, user string, keys []string, in EnsureUserInput) error {
	for _, k := range keys {
		in.Log.Step("deleting access key %s of %s: artifacts go through the server, clients need no AWS key", k, user)
		if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(k)}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting access key %s of %s: %w", k, user, err)
		}
	}
	return in.ForgetKey()
}

// createAccessKey makes the user's key and saves its secret at once. Not
// cancellable once sent: an interrupt between AWS creating the key and us
// saving its secret would strand a key nobody can use.
func createAccessKey(ctx context.Context, api UserAPI, in EnsureUserInput) error {
	user := in.Names.User
	in.Log.Step("creating access key for %s", user)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var out *iam.CreateAccessKeyOutput
	create := func() error {
		return RetryOn(ctx, iamWait, isIAMPropagation, nil, func() (err error) {
			out, err = api.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
			return err
		})
	}
	err := create()
	if HasCode(err, "LimitExceeded") {
		// The user had no key: the SDK's earlier tries made the two it may
		// have, and their answers were lost. They go (as retry strays), and
		// one more try.
		if gone, derr := deleteLostKeys(ctx, api, user, in.Log); derr != nil {
			err = derr
		} else if gone {
			err = create()
		}
	}
	if err != nil {
		return fmt.Errorf("creating access key for %s: %w", user, err)
	}
	if err := in.SaveKey(aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey)); err != nil {
		// Without its secret the key is useless; remove it so the next run starts clean.
		_, derr := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: out.AccessKey.AccessKeyId})
		return fmt.Errorf("saving access key of %s: %w (removing the unsaved key: %v)", user, err, derr)
	}
	return deleteRetryStrays(ctx, api, user, out.AccessKey, in.Log)
}

// deleteStrayKeys removes every key but the known one: extra keys come from
// an interrupted or concurrent run, their secrets were never saved, so
// nobody can use them.
func deleteStrayKeys(ctx context.Context, api UserAPI, user string, keys []string, known string, log Log) error {
	for _, k := range keys {
		if k == known {
			continue
		}
		log.Step("deleting stray access key %s of %s", k, user)
		if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(k)}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting stray access key %s: %w", k, err)
		}
	}
	return nil
}

// deleteRetryStrays removes keys that our own CreateAccessKey made when the
// SDK retried it after a lost response: their secrets were never seen, so
// nobody can use them. Only keys created shortly before ours qualify; an
// older key belongs to someone else and is left alone.
func deleteRetryStrays(ctx context.Context, api UserAPI, user string, ours *iamtypes.AccessKey, log Log) error {
	if ours.CreateDate == nil {
		return nil // no time to compare with: touch nothing
	}
	keys, err := listAccessKeys(ctx, api, user)
	if err != nil {
		return fmt.Errorf("listing access keys of %s: %w", user, err)
	}
	since := aws.ToTime(ours.CreateDate).Add(-2 * time.Minute)
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		if id == aws.ToString(ours.AccessKeyId) || aws.ToTime(k.CreateDate).Before(since) {
			continue
		}
		log.Step("deleting access key %s of %s: made by a retried request, its secret was never received", id, user)
		if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: k.AccessKeyId}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting stray access key %s: %w", id, err)
		}
	}
	return nil
}

// deleteLostKeys removes the keys the SDK's lost tries made: those of the
// two minutes before the newest (AWS's clock, not ours). It says whether
// there were any.
func deleteLostKeys(ctx context.Context, api UserAPI, user string, log Log) (bool, error) {
	keys, err := listAccessKeys(ctx, api, user)
	if err != nil {
		return false, fmt.Errorf("listing access keys of %s: %w", user, err)
	}
	var newest time.Time
	for _, k := range keys {
		if t := aws.ToTime(k.CreateDate); t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return false, nil
	}
	return true, deleteRetryStrays(ctx, api, user, &iamtypes.AccessKey{CreateDate: aws.Time(newest.Add(time.Second))}, log)
}

// UserInventory is the user's status row and tags when the stack owns it.
func UserInventory(ctx context.Context, api UserAPI, n Names) ([]Resource, map[string]string, error) {
	u, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	switch {
	case HasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, nil, fmt.Errorf("reading IAM user %s: %w", n.User, err)
	case owned(IAMTagMap(u.User.Tags), n.Stack):
		return []Resource{{Kind: KindUser, ID: aws.ToString(u.User.UserId), Name: n.User, State: StateExists}}, IAMTagMap(u.User.Tags), nil
	default:
		return []Resource{{Kind: KindUser, ID: aws.ToString(u.User.UserId), Name: n.User, State: StateForeign}}, nil, nil
	}
	return nil, nil, nil
}

// ListUsers adds to set the stacks of IAM users under /mlstack/, placed by
// their region tag.
func ListUsers(ctx context.Context, api UserAPI, set *StackSet, want map[string]bool) error {
	p := iam.NewListUsersPaginator(api, &iam.ListUsersInput{PathPrefix: aws.String(IAMPath)})
	users, err := AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListUsersOutput) []iamtypes.User { return o.Users })
	if err != nil {
		return fmt.Errorf("listing IAM users under %s: %w", IAMPath, err)
	}
	for _, u := range users {
		out, err := api.GetUser(ctx, &iam.GetUserInput{UserName: u.UserName})
		if HasCode(err, "NoSuchEntity") {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading IAM user %s: %w", aws.ToString(u.UserName), err)
		}
		set.addRegional(IAMTagMap(out.User.Tags), Resource{Kind: KindUser, ID: aws.ToString(out.User.UserId), Name: aws.ToString(out.User.UserName), State: StateExists}, want)
	}
	return nil
}

// RetagUser moves the user's expiry.
func RetagUser(ctx context.Context, api UserAPI, n Names, expires string) error {
	tags := []iamtypes.Tag{{Key: aws.String(TagExpiresAt), Value: aws.String(expires)}}
	if _, err := api.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(n.User), Tags: tags}); err != nil {
		return fmt.Errorf("moving the expiry of IAM user %s: %w", n.User, err)
	}
	return nil
}

// DeleteUser removes what ties the user down (access keys, inline and
// attached policies, group memberships, a console login), then the user.
// The user is the stack's: what an admin added to it goes with it, or
// DeleteUser would answer DeleteConflict for good. NotFound is done.
// The inventory found it tagged with the stack.
func DeleteUser(ctx context.Context, api UserAPI, n Names, log Log) error {
	log.Step("deleting IAM user %s", n.User)
	for _, step := range []func(context.Context, UserAPI, string) error{
		deleteUserKeys, deleteUserPolicies, detachUserPolicies, leaveGroups, deleteLoginProfile,
	} {
		if err := step(ctx, api, n.User); err != nil {
			return err
		}
	}
	if _, err := api.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(n.User)}); err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("deleting IAM user %s: %w", n.User, err)
	}
	return nil
}

func deleteUserKeys(ctx context.Context, api UserAPI, user string) error {
	keys, err := accessKeys(ctx, api, user)
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return err
	}
	for _, k := range keys {
		if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(k)}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting access key of %s: %w", user, err)
		}
	}
	return nil
}

func deleteUserPolicies(ctx context.Context, api UserAPI, user string) error {
	pols, err := listUserPolicies(ctx, api, user)
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing policies of %s: %w", user, err)
	}
	for _, p := range pols {
		if _, err := api.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String(p)}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting policy %s of %s: %w", p, user, err)
		}
	}
	return nil
}

func detachUserPolicies(ctx context.Context, api UserAPI, user string) error {
	att, err := listAttachedUserPolicies(ctx, api, user)
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing attached policies of %s: %w", user, err)
	}
	for _, p := range att {
		if _, err := api.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(user), PolicyArn: p.PolicyArn}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("detaching policy %s from %s: %w", aws.ToString(p.PolicyArn), user, err)
		}
	}
	return nil
}

func leaveGroups(ctx context.Context, api UserAPI, user string) error {
	groups, err := listGroupsForUser(ctx, api, user)
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing groups of %s: %w", user, err)
	}
	for _, g := range groups {
		if _, err := api.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{UserName: aws.String(user), GroupName: g.GroupName}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("removing %s from group %s: %w", user, aws.ToString(g.GroupName), err)
		}
	}
	return nil
}

func deleteLoginProfile(ctx context.Context, api UserAPI, user string) error {
	_, err := api.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String(user)})
	if HasCode(err, "NoSuchEntity") {
		return nil // the usual case: no console login
	}
	if err != nil {
		return fmt.Errorf("reading the console login of %s: %w", user, err)
	}
	if _, err := api.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String(user)}); err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("deleting the console login of %s: %w", user, err)
	}
	return nil
}
