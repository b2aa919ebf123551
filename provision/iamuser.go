package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// userAPI is the part of IAM the stack user needs.
type userAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	CreateUser(context.Context, *iam.CreateUserInput, ...func(*iam.Options)) (*iam.CreateUserOutput, error)
	DeleteUser(context.Context, *iam.DeleteUserInput, ...func(*iam.Options)) (*iam.DeleteUserOutput, error)
	GetUserPolicy(context.Context, *iam.GetUserPolicyInput, ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	PutUserPolicy(context.Context, *iam.PutUserPolicyInput, ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	DeleteUserPolicy(context.Context, *iam.DeleteUserPolicyInput, ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(context.Context, *iam.CreateAccessKeyInput, ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	DeleteAccessKey(context.Context, *iam.DeleteAccessKeyInput, ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
}

// iamWait bounds retries of IAM's eventual consistency: a user, role or
// profile created a moment ago can be invisible to the next call.
const iamWait = 30 * time.Second

// userState is what exists of the stack user.
type userState struct {
	exists   bool
	arn      string
	tags     map[string]string
	keys     []string // access key IDs
	policyOK bool
}

// findUser reads the stack user; a same-named user without the stack tag is a NotOwnedError.
func findUser(ctx context.Context, api userAPI, n Names, policy string) (*userState, error) {
	out, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	if hasCode(err, "NoSuchEntity") {
		return &userState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading IAM user %s: %w", n.User, err)
	}
	st := &userState{exists: true, arn: aws.ToString(out.User.Arn), tags: iamTagMap(out.User.Tags)}
	if !owned(st.tags, n.Stack) {
		return nil, &NotOwnedError{Kind: "IAM user", Name: n.User, Stack: n.Stack}
	}
	keys, err := api.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(n.User)})
	if err != nil {
		return nil, fmt.Errorf("listing access keys of %s: %w", n.User, err)
	}
	for _, k := range keys.AccessKeyMetadata {
		st.keys = append(st.keys, aws.ToString(k.AccessKeyId))
	}
	pol, err := api.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(n.User), PolicyName: aws.String(n.Policy)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading policy of %s: %w", n.User, err)
	default:
		st.policyOK = samePolicy(aws.ToString(pol.PolicyDocument), policy)
	}
	return st, nil
}

// ensureUserInput is what ensureUser needs besides the API.
type ensureUserInput struct {
	names  Names
	policy string
	tags   map[string]string
	// knownKey is the access key ID whose secret is in local state ("" if none).
	knownKey string
	// saveKey persists a new key before anything else happens, so a crash
	// cannot leave a key whose secret is lost.
	saveKey func(id, secret string) error
	log     *progress
}

// ensureUser creates the user, its inline policy and exactly one access key.
func ensureUser(ctx context.Context, api userAPI, st *userState, in ensureUserInput) error {
	n := in.names
	if !st.exists {
		in.log.step("creating IAM user %s", n.User)
		_, err := api.CreateUser(ctx, &iam.CreateUserInput{
			UserName: aws.String(n.User), Path: aws.String(iamPath), Tags: iamTags(in.tags),
		})
		if hasCode(err, "EntityAlreadyExists") {
			// Another run made it meanwhile: it must still be ours.
			if _, ferr := findUser(ctx, api, n, in.policy); ferr != nil {
				return ferr
			}
		} else if err != nil {
			return fmt.Errorf("creating IAM user %s: %w", n.User, err)
		}
	}
	if !st.policyOK {
		in.log.step("setting bucket-only policy on IAM user %s", n.User)
		err := retryOn(ctx, iamWait, isIAMPropagation, nil, func() error {
			_, err := api.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
				UserName: aws.String(n.User), PolicyName: aws.String(n.Policy), PolicyDocument: aws.String(in.policy),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("setting policy of IAM user %s: %w", n.User, err)
		}
	}
	switch {
	case len(st.keys) == 0:
		in.log.step("creating access key for %s", n.User)
		// Not cancellable once sent: an interrupt between AWS creating the
		// key and us saving its secret would strand a key nobody can use.
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		var out *iam.CreateAccessKeyOutput
		err := retryOn(kctx, iamWait, isIAMPropagation, nil, func() (err error) {
			out, err = api.CreateAccessKey(kctx, &iam.CreateAccessKeyInput{UserName: aws.String(n.User)})
			return err
		})
		if err != nil {
			return fmt.Errorf("creating access key for %s: %w", n.User, err)
		}
		if err := in.saveKey(aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey)); err != nil {
			// Without its secret the key is useless; remove it so the next run starts clean.
			_, derr := api.DeleteAccessKey(kctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: out.AccessKey.AccessKeyId})
			return fmt.Errorf("saving access key of %s: %w (removing the unsaved key: %v)", n.User, err, derr)
		}
		if err := deleteRetryStrays(kctx, api, n.User, out.AccessKey, in.log); err != nil {
			return err
		}
	case contains(st.keys, in.knownKey):
		// Extra keys come from an interrupted or concurrent run: their
		// secrets were never saved, so nobody can use them.
		for _, k := range st.keys {
			if k == in.knownKey {
				continue
			}
			in.log.step("deleting stray access key %s of %s", k, n.User)
			if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: aws.String(k)}); err != nil && !hasCode(err, "NoSuchEntity") {
				return fmt.Errorf("deleting stray access key %s: %w", k, err)
			}
		}
	default:
		return fmt.Errorf("IAM user %s has access key(s) %v but their secret is not in the local state: "+
			"run mlstack on the machine that created the stack, or `mlstack down` and `up` again", n.User, st.keys)
	}
	return nil
}

// deleteRetryStrays removes keys that our own CreateAccessKey made when the
// SDK retried it after a lost response: their secrets were never seen, so
// nobody can use them. Only keys created shortly before ours qualify; an
// older key belongs to someone else and is left alone.
func deleteRetryStrays(ctx context.Context, api userAPI, user string, ours *iamtypes.AccessKey, log *progress) error {
	if ours.CreateDate == nil {
		return nil // no time to compare with: touch nothing
	}
	keys, err := api.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		return fmt.Errorf("listing access keys of %s: %w", user, err)
	}
	since := aws.ToTime(ours.CreateDate).Add(-2 * time.Minute)
	for _, k := range keys.AccessKeyMetadata {
		id := aws.ToString(k.AccessKeyId)
		if id == aws.ToString(ours.AccessKeyId) || aws.ToTime(k.CreateDate).Before(since) {
			continue
		}
		log.step("deleting access key %s of %s: made by a retried request, its secret was never received", id, user)
		if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: k.AccessKeyId}); err != nil && !hasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting stray access key %s: %w", id, err)
		}
	}
	return nil
}

// deleteUser removes access keys, inline policies and the user. NotFound is done.
func deleteUser(ctx context.Context, api userAPI, n Names, log *progress) error {
	out, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	if hasCode(err, "NoSuchEntity") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading IAM user %s: %w", n.User, err)
	}
	if !owned(iamTagMap(out.User.Tags), n.Stack) {
		log.warn("leaving IAM user %s alone: it is not tagged %s=%s", n.User, TagStack, n.Stack)
		return nil
	}
	log.step("deleting IAM user %s", n.User)
	keys, err := api.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(n.User)})
	if err != nil && !hasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing access keys of %s: %w", n.User, err)
	}
	if keys != nil {
		for _, k := range keys.AccessKeyMetadata {
			if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: k.AccessKeyId}); err != nil && !hasCode(err, "NoSuchEntity") {
				return fmt.Errorf("deleting access key of %s: %w", n.User, err)
			}
		}
	}
	pols, err := api.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String(n.User)})
	if err != nil && !hasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing policies of %s: %w", n.User, err)
	}
	if pols != nil {
		for _, p := range pols.PolicyNames {
			if _, err := api.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(n.User), PolicyName: aws.String(p)}); err != nil && !hasCode(err, "NoSuchEntity") {
				return fmt.Errorf("deleting policy %s of %s: %w", p, n.User, err)
			}
		}
	}
	if _, err := api.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(n.User)}); err != nil && !hasCode(err, "NoSuchEntity") {
		return fmt.Errorf("deleting IAM user %s: %w", n.User, err)
	}
	return nil
}

func contains(list []string, s string) bool {
	if s == "" {
		return false
	}
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
