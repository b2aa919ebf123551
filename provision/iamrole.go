package provision

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// roleAPI is the part of IAM the server role and its instance profile need.
type roleAPI interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	DeleteInstanceProfile(context.Context, *iam.DeleteInstanceProfileInput, ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	RemoveRoleFromInstanceProfile(context.Context, *iam.RemoveRoleFromInstanceProfileInput, ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
}

// roleState is what exists of the server role and instance profile.
type roleState struct {
	roleExists, policyOK      bool
	profileExists, roleInProf bool
	profileArn                string
}

func findRole(ctx context.Context, api roleAPI, n Names, policy string) (*roleState, error) {
	st := &roleState{}
	role, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	default:
		if !owned(iamTagMap(role.Role.Tags), n.Stack) {
			return nil, &NotOwnedError{Kind: "IAM role", Name: n.Role, Stack: n.Stack}
		}
		st.roleExists = true
		pol, err := api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(n.Role), PolicyName: aws.String(n.Policy)})
		switch {
		case hasCode(err, "NoSuchEntity"):
		case err != nil:
			return nil, fmt.Errorf("reading policy of IAM role %s: %w", n.Role, err)
		default:
			st.policyOK = samePolicy(aws.ToString(pol.PolicyDocument), policy)
		}
	}
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading instance profile %s: %w", n.Profile, err)
	default:
		if !owned(iamTagMap(prof.InstanceProfile.Tags), n.Stack) {
			return nil, &NotOwnedError{Kind: "instance profile", Name: n.Profile, Stack: n.Stack}
		}
		st.profileExists = true
		st.profileArn = aws.ToString(prof.InstanceProfile.Arn)
		for _, r := range prof.InstanceProfile.Roles {
			if aws.ToString(r.RoleName) == n.Role {
				st.roleInProf = true
			}
		}
	}
	return st, nil
}

// ensureRole creates the server role with the bucket-only policy and an
// instance profile holding it. The server reaches S3 through this role, so
// no AWS keys ever travel to the instance.
func ensureRole(ctx context.Context, api roleAPI, st *roleState, n Names, policy string, tags map[string]string, log *progress) error {
	if !st.roleExists {
		log.step("creating IAM role %s", n.Role)
		_, err := api.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(n.Role), Path: aws.String(iamPath),
			AssumeRolePolicyDocument: aws.String(ec2TrustPolicy), Tags: iamTags(tags),
			Description: aws.String("mlstack " + n.Stack + " tracking server"),
		})
		if hasCode(err, "EntityAlreadyExists") {
			if _, ferr := findRole(ctx, api, n, policy); ferr != nil {
				return ferr // made meanwhile by someone else: not ours
			}
		} else if err != nil {
			return fmt.Errorf("creating IAM role %s: %w", n.Role, err)
		}
	}
	if !st.policyOK {
		err := retryOn(ctx, iamWait, isIAMPropagation, nil, func() error {
			_, err := api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
				RoleName: aws.String(n.Role), PolicyName: aws.String(n.Policy), PolicyDocument: aws.String(policy),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("setting policy of IAM role %s: %w", n.Role, err)
		}
	}
	if !st.profileExists {
		log.step("creating instance profile %s", n.Profile)
		out, err := api.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
			InstanceProfileName: aws.String(n.Profile), Path: aws.String(iamPath), Tags: iamTags(tags),
		})
		if hasCode(err, "EntityAlreadyExists") {
			if _, ferr := findRole(ctx, api, n, policy); ferr != nil {
				return ferr
			}
		} else if err != nil {
			return fmt.Errorf("creating instance profile %s: %w", n.Profile, err)
		}
		if out != nil {
			st.profileArn = aws.ToString(out.InstanceProfile.Arn)
		}
	}
	if !st.roleInProf {
		err := retryOn(ctx, iamWait, isIAMPropagation, nil, func() error {
			_, err := api.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
				InstanceProfileName: aws.String(n.Profile), RoleName: aws.String(n.Role),
			})
			return err
		})
		if err != nil && !hasCode(err, "LimitExceeded") { // LimitExceeded: a role is already in it
			return fmt.Errorf("adding role %s to instance profile %s: %w", n.Role, n.Profile, err)
		}
	}
	return nil
}

// deleteRole removes the instance profile and the role (policies first).
func deleteRole(ctx context.Context, api roleAPI, n Names, log *progress) error {
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case hasCode(err, "NoSuchEntity"):
	case err != nil:
		return fmt.Errorf("reading instance profile %s: %w", n.Profile, err)
	case !owned(iamTagMap(prof.InstanceProfile.Tags), n.Stack):
		log.warn("leaving instance profile %s alone: it is not tagged %s=%s", n.Profile, TagStack, n.Stack)
	default:
		log.step("deleting instance profile %s", n.Profile)
		for _, r := range prof.InstanceProfile.Roles {
			if _, err := api.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
				InstanceProfileName: aws.String(n.Profile), RoleName: r.RoleName,
			}); err != nil && !hasCode(err, "NoSuchEntity") && !roleLeftProfile(ctx, api, n) {
				return fmt.Errorf("removing role from instance profile %s: %w", n.Profile, err)
			}
		}
		if _, err := api.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)}); err != nil && !hasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting instance profile %s: %w", n.Profile, err)
		}
	}

	role, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	if hasCode(err, "NoSuchEntity") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	}
	if !owned(iamTagMap(role.Role.Tags), n.Stack) {
		log.warn("leaving IAM role %s alone: it is not tagged %s=%s", n.Role, TagStack, n.Stack)
		return nil
	}
	log.step("deleting IAM role %s", n.Role)
	pols, err := api.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(n.Role)})
	if err != nil && !hasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing policies of IAM role %s: %w", n.Role, err)
	}
	if pols != nil {
		for _, p := range pols.PolicyNames {
			if _, err := api.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(n.Role), PolicyName: aws.String(p)}); err != nil && !hasCode(err, "NoSuchEntity") {
				return fmt.Errorf("deleting policy %s of IAM role %s: %w", p, n.Role, err)
			}
		}
	}
	att, err := api.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(n.Role)})
	if err != nil && !hasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing attached policies of IAM role %s: %w", n.Role, err)
	}
	if att != nil {
		for _, p := range att.AttachedPolicies {
			if _, err := api.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(n.Role), PolicyArn: p.PolicyArn}); err != nil && !hasCode(err, "NoSuchEntity") {
				return fmt.Errorf("detaching policy from IAM role %s: %w", n.Role, err)
			}
		}
	}
	if _, err := api.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(n.Role)}); err != nil && !hasCode(err, "NoSuchEntity") {
		return fmt.Errorf("deleting IAM role %s: %w", n.Role, err)
	}
	return nil
}

// roleLeftProfile re-reads the profile after an ambiguous failure (a lost
// response whose retry the emulator answers with a 500): if the role is no
// longer in it, the removal did happen.
func roleLeftProfile(ctx context.Context, api roleAPI, n Names) bool {
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	if hasCode(err, "NoSuchEntity") {
		return true
	}
	if err != nil {
		return false
	}
	for _, r := range prof.InstanceProfile.Roles {
		if aws.ToString(r.RoleName) == n.Role {
			return false
		}
	}
	return true
}
