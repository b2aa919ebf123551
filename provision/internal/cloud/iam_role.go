package cloud

// The server role and its instance profile mlstack-<stack>-server (path
// /mlstack/): the server reaches the bucket through this role, so no AWS
// keys ever travel to the instance.

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// roleAPI is the part of IAM the server role and its instance profile need.
type roleAPI interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListRoles(context.Context, *iam.ListRolesInput, ...func(*iam.Options)) (*iam.ListRolesOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	TagRole(context.Context, *iam.TagRoleInput, ...func(*iam.Options)) (*iam.TagRoleOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	TagInstanceProfile(context.Context, *iam.TagInstanceProfileInput, ...func(*iam.Options)) (*iam.TagInstanceProfileOutput, error)
	DeleteInstanceProfile(context.Context, *iam.DeleteInstanceProfileInput, ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	RemoveRoleFromInstanceProfile(context.Context, *iam.RemoveRoleFromInstanceProfileInput, ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
}

// RoleFound is what exists of the server role and instance profile.
type RoleFound struct {
	RoleExists, PolicyOK      bool
	ProfileExists, RoleInProf bool
}

func FindRole(ctx context.Context, api roleAPI, n Names, policy string) (*RoleFound, error) {
	out, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return nil, fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	}
	var role *iamtypes.Role
	if err == nil {
		role = out.Role
	}
	return FindRoleFrom(ctx, api, n, policy, role)
}

// FindRoleFrom is findRole once GetRole has answered (role nil: no such
// role): openStack's findHome may have read it already.
func FindRoleFrom(ctx context.Context, api roleAPI, n Names, policy string, role *iamtypes.Role) (*RoleFound, error) {
	r := &RoleFound{}
	switch {
	case role == nil:
	case !owned(IAMTagMap(role.Tags), n.Stack):
		return nil, &NotOwnedError{Kind: "IAM role", Name: n.Role, Stack: n.Stack}
	default:
		r.RoleExists = true
		if err := roleDrift(ctx, api, n, aws.ToString(role.AssumeRolePolicyDocument)); err != nil {
			return nil, err
		}
		pol, err := api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(n.Role), PolicyName: aws.String(n.Policy)})
		switch {
		case HasCode(err, "NoSuchEntity"):
		case err != nil:
			return nil, fmt.Errorf("reading policy of IAM role %s: %w", n.Role, err)
		default:
			r.PolicyOK = SamePolicy(aws.ToString(pol.PolicyDocument), policy)
		}
	}
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case HasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, fmt.Errorf("reading instance profile %s: %w", n.Profile, err)
	case !owned(IAMTagMap(prof.InstanceProfile.Tags), n.Stack):
		return nil, &NotOwnedError{Kind: "instance profile", Name: n.Profile, Stack: n.Stack}
	default:
		r.ProfileExists = true
		r.RoleInProf = profileHolds(prof.InstanceProfile, n.Role)
		for _, other := range prof.InstanceProfile.Roles {
			if name := aws.ToString(other.RoleName); name != n.Role {
				return nil, &DriftError{Kind: "instance profile", Name: n.Profile, What: "holds role " + name,
					Fix: fmt.Sprintf("take it out: `aws iam remove-role-from-instance-profile --instance-profile-name %s --role-name %s`", n.Profile, name)}
			}
		}
	}
	return r, nil
}

// roleDrift refuses a role that others may assume, or that may do more
// than the bucket: a trust policy other than EC2's, another inline policy,
// a managed policy.
func roleDrift(ctx context.Context, api roleAPI, n Names, trust string) error {
	drift := func(what, fix string) error { return &DriftError{Kind: "IAM role", Name: n.Role, What: what, Fix: fix} }
	if want := EC2TrustPolicy(n.Region); !SamePolicy(trust, want) {
		return drift("lets other principals than EC2 assume it (its trust policy was changed)",
			fmt.Sprintf("restore it: `aws iam update-assume-role-policy --role-name %s --policy-document '%s'`", n.Role, want))
	}
	inline, err := listRolePolicies(ctx, api, n.Role)
	if err != nil {
		return fmt.Errorf("listing policies of IAM role %s: %w", n.Role, err)
	}
	for _, p := range inline {
		if p != n.Policy {
			return drift("has inline policy "+p, fmt.Sprintf("delete it: `aws iam delete-role-policy --role-name %s --policy-name %s`", n.Role, p))
		}
	}
	att, err := listAttachedRolePolicies(ctx, api, n.Role)
	if err != nil {
		return fmt.Errorf("listing attached policies of IAM role %s: %w", n.Role, err)
	}
	for _, p := range att {
		arn := aws.ToString(p.PolicyArn)
		return drift("has managed policy "+arn+" attached", fmt.Sprintf("detach it: `aws iam detach-role-policy --role-name %s --policy-arn %s`", n.Role, arn))
	}
	return nil
}

func profileHolds(p *iamtypes.InstanceProfile, role string) bool {
	for _, r := range p.Roles {
		if aws.ToString(r.RoleName) == role {
			return true
		}
	}
	return false
}

// Plan says in words what ensureRole would do.
func (r *RoleFound) Plan(n Names) []PlanStep {
	var p []PlanStep
	if !r.RoleExists {
		p = append(p, Step(KindRole, n.Role, "create IAM role %s", n.Role))
	} else if !r.PolicyOK {
		p = append(p, Step(KindRole, n.Role, "set the bucket-only policy of IAM role %s", n.Role))
	}
	if !r.ProfileExists {
		p = append(p, Step(KindProfile, n.Profile, "create instance profile %s", n.Profile))
	}
	if !r.RoleInProf {
		p = append(p, Step(KindProfile, n.Profile, "put role %s into instance profile %s", n.Role, n.Profile))
	}
	return p
}

// EnsureRole creates the server role with the bucket-only policy and an
// instance profile holding it.
func EnsureRole(ctx context.Context, api roleAPI, r *RoleFound, n Names, policy string, tags map[string]string, log Log) error {
	if !r.RoleExists {
		log.Step("creating IAM role %s", n.Role)
		_, err := api.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(n.Role), Path: aws.String(IAMPath),
			AssumeRolePolicyDocument: aws.String(EC2TrustPolicy(n.Region)), Tags: IAMTags(tags),
			Description: aws.String("mlstack " + n.Stack + " tracking server"),
		})
		if err := adoptIfOurs(ctx, api, n, policy, err, "creating IAM role "+n.Role); err != nil {
			return err
		}
	}
	if !r.PolicyOK {
		err := RetryOn(ctx, iamWait, isIAMPropagation, nil, func() error {
			_, err := api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
				RoleName: aws.String(n.Role), PolicyName: aws.String(n.Policy), PolicyDocument: aws.String(policy),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("setting policy of IAM role %s: %w", n.Role, err)
		}
	}
	if !r.ProfileExists {
		log.Step("creating instance profile %s", n.Profile)
		_, err := api.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
			InstanceProfileName: aws.String(n.Profile), Path: aws.String(IAMPath), Tags: IAMTags(tags),
		})
		if err := adoptIfOurs(ctx, api, n, policy, err, "creating instance profile "+n.Profile); err != nil {
			return err
		}
	}
	if !r.RoleInProf {
		err := RetryOn(ctx, iamWait, isIAMPropagation, nil, func() error {
			_, err := api.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
				InstanceProfileName: aws.String(n.Profile), RoleName: aws.String(n.Role),
			})
			return err
		})
		// LimitExceeded: a role is in the profile already. Ours, when an
		// earlier attempt of this call did land; another role is drift.
		if HasCode(err, "LimitExceeded") {
			if again, ferr := FindRole(ctx, api, n, policy); ferr != nil || again.RoleInProf {
				return ferr
			}
		}
		if err != nil {
			return fmt.Errorf("adding role %s to instance profile %s: %w", n.Role, n.Profile, err)
		}
	}
	return nil
}

// adoptIfOurs handles a create's answer: EntityAlreadyExists means another
// run made it meanwhile, which is fine only if it carries our tag.
func adoptIfOurs(ctx context.Context, api roleAPI, n Names, policy string, err error, what string) error {
	switch {
	case HasCode(err, "EntityAlreadyExists"):
		_, ferr := FindRole(ctx, api, n, policy)
		return ferr
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// RoleInventory is the status rows of the role and the profile the stack
// owns, and the role's tags (nil without one).
func RoleInventory(ctx context.Context, api roleAPI, n Names) ([]Resource, map[string]string, error) {
	var out []Resource
	var tags map[string]string
	r, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	switch {
	case HasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, nil, fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	case owned(IAMTagMap(r.Role.Tags), n.Stack):
		tags = IAMTagMap(r.Role.Tags)
		out = append(out, Resource{Kind: KindRole, ID: aws.ToString(r.Role.RoleId), Name: n.Role, State: StateExists})
	default:
		out = append(out, Resource{Kind: KindRole, ID: aws.ToString(r.Role.RoleId), Name: n.Role, State: StateForeign})
	}
	p, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case HasCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, nil, fmt.Errorf("reading instance profile %s: %w", n.Profile, err)
	case owned(IAMTagMap(p.InstanceProfile.Tags), n.Stack):
		out = append(out, Resource{Kind: KindProfile, ID: aws.ToString(p.InstanceProfile.InstanceProfileId), Name: n.Profile, State: StateExists})
	default:
		out = append(out, Resource{Kind: KindProfile, ID: aws.ToString(p.InstanceProfile.InstanceProfileId), Name: n.Profile, State: StateForeign})
	}
	return out, tags, nil
}

// ListRoles adds to set the stacks of IAM roles under /mlstack/, placed by
// their region tag.
func ListRoles(ctx context.Context, api roleAPI, set *StackSet, want map[string]bool) error {
	p := iam.NewListRolesPaginator(api, &iam.ListRolesInput{PathPrefix: aws.String(IAMPath)})
	roles, err := AllPages(ctx, p.HasMorePages, p.NextPage, func(o *iam.ListRolesOutput) []iamtypes.Role { return o.Roles })
	if err != nil {
		return fmt.Errorf("listing IAM roles under %s: %w", IAMPath, err)
	}
	for _, r := range roles {
		out, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: r.RoleName})
		if HasCode(err, "NoSuchEntity") {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading IAM role %s: %w", aws.ToString(r.RoleName), err)
		}
		set.addRegional(IAMTagMap(out.Role.Tags), Resource{Kind: KindRole, ID: aws.ToString(out.Role.RoleId), Name: aws.ToString(out.Role.RoleName), State: StateExists}, want)
	}
	return nil
}

// RetagRole moves the expiry of the role and of the profile that exist.
func RetagRole(ctx context.Context, api roleAPI, r *RoleFound, n Names, expires string) error {
	tags := []iamtypes.Tag{{Key: aws.String(TagExpiresAt), Value: aws.String(expires)}}
	if r.RoleExists {
		if _, err := api.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(n.Role), Tags: tags}); err != nil {
			return fmt.Errorf("moving the expiry of IAM role %s: %w", n.Role, err)
		}
	}
	if r.ProfileExists {
		if _, err := api.TagInstanceProfile(ctx, &iam.TagInstanceProfileInput{InstanceProfileName: aws.String(n.Profile), Tags: tags}); err != nil {
			return fmt.Errorf("moving the expiry of instance profile %s: %w", n.Profile, err)
		}
	}
	return nil
}

// DeleteRole removes the instance profile, then the role (policies
// first): each only when the inventory found it the stack's.
func DeleteRole(ctx context.Context, api roleAPI, n Names, profile, role bool, log Log) error {
	if profile {
		if err := deleteProfile(ctx, api, n, log); err != nil {
			return err
		}
	}
	if !role {
		return nil
	}
	log.Step("deleting IAM role %s", n.Role)
	if err := deleteRolePolicies(ctx, api, n.Role); err != nil {
		return err
	}
	if _, err := api.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(n.Role)}); err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("deleting IAM role %s: %w", n.Role, err)
	}
	return nil
}

// deleteProfile empties and deletes the instance profile.
func deleteProfile(ctx context.Context, api roleAPI, n Names, log Log) error {
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case HasCode(err, "NoSuchEntity"):
		return nil
	case err != nil:
		return fmt.Errorf("reading instance profile %s: %w", n.Profile, err)
	case !owned(IAMTagMap(prof.InstanceProfile.Tags), n.Stack):
		log.Warn("leaving instance profile %s alone: it is not tagged %s=%s", n.Profile, TagStack, n.Stack)
		return nil
	}
	log.Step("deleting instance profile %s", n.Profile)
	for _, r := range prof.InstanceProfile.Roles {
		if _, err := api.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			InstanceProfileName: aws.String(n.Profile), RoleName: r.RoleName,
		}); err != nil && !HasCode(err, "NoSuchEntity") && !roleLeftProfile(ctx, api, n) {
			return fmt.Errorf("removing role from instance profile %s: %w", n.Profile, err)
		}
	}
	if _, err := api.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)}); err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("deleting instance profile %s: %w", n.Profile, err)
	}
	return nil
}

// deleteRolePolicies deletes the role's inline policies and detaches managed ones.
func deleteRolePolicies(ctx context.Context, api roleAPI, role string) error {
	pols, err := listRolePolicies(ctx, api, role)
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing policies of IAM role %s: %w", role, err)
	}
	for _, p := range pols {
		if _, err := api.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(p)}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting policy %s of IAM role %s: %w", p, role, err)
		}
	}
	att, err := listAttachedRolePolicies(ctx, api, role)
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return fmt.Errorf("listing attached policies of IAM role %s: %w", role, err)
	}
	for _, p := range att {
		if _, err := api.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(role), PolicyArn: p.PolicyArn}); err != nil && !HasCode(err, "NoSuchEntity") {
			return fmt.Errorf("detaching policy from IAM role %s: %w", role, err)
		}
	}
	return nil
}

// roleLeftProfile re-reads the profile after an ambiguous failure (a lost
// response whose retry the emulator answers with a 500): if the role is no
// longer in it, the removal did happen.
func roleLeftProfile(ctx context.Context, api roleAPI, n Names) bool {
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	if HasCode(err, "NoSuchEntity") {
		return true
	}
	return err == nil && !profileHolds(prof.InstanceProfile, n.Role)
}
