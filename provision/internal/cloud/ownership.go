package cloud

// What makes a resource a stack's own. A tag proves little: anyone with
// ec2:CreateTags can put mlstack:stack=NAME on an instance, key pair or
// security group. So an instance counts only when it runs with the stack's
// instance profile (launching with it needs iam:PassRole on the stack's
// role), its security group and key pair, from Canonical's image; and what
// makes a stack at all, whose it is and when it expires comes from its IAM
// user and role, which only iam:Tag* can tag.

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/mlstack/mlstack/provision/region"
)

// ProfileARN is the ARN of the stack's instance profile, as EC2 reports it
// on the instances that run with it.
func (n Names) ProfileARN() string {
	return fmt.Sprintf("arn:%s:iam::%s:instance-profile%s%s", region.Of(n.Region).Name, n.Account, IAMPath, n.Profile)
}

// InstanceRefs is what the stack's own instance runs with.
type InstanceRefs struct {
	ProfileARN string
	SGID       string // the stack's own group; "" when it has none
	KeyName    string
	Canonical  string            // Canonical's account here; "" when unknown
	ImageOwner map[string]string // image id → owner, for the images EC2 still lists
}

// Mismatch says how inst differs from the stack's own instance, or "".
func (w InstanceRefs) Mismatch(inst *ec2types.Instance) string {
	if p := inst.IamInstanceProfile; p == nil || aws.ToString(p.Arn) != w.ProfileARN {
		return "it does not run with the stack's instance profile " + w.ProfileARN
	}
	if groups := instanceGroups(inst); w.SGID == "" || len(groups) != 1 || groups[0] != w.SGID {
		return fmt.Sprintf("its security groups %v are not the stack's group alone", groups)
	}
	if aws.ToString(inst.KeyName) != w.KeyName {
		return fmt.Sprintf("its key pair %q is not the stack's %s", aws.ToString(inst.KeyName), w.KeyName)
	}
	// An image EC2 no longer lists (Canonical deregisters old builds) cannot
	// be checked; the instance profile above is what cannot be forged.
	img := aws.ToString(inst.ImageId)
	if owner, ok := w.ImageOwner[img]; ok && w.Canonical != "" && owner != w.Canonical {
		return fmt.Sprintf("its image %s is not Canonical's (owner %s)", img, owner)
	}
	return ""
}

// instanceGroups are the ids of the instance's security groups, from the
// instance and its network interfaces (EC2 may list them in either).
func instanceGroups(inst *ec2types.Instance) []string {
	var ids []string
	add := func(id *string) {
		if s := aws.ToString(id); s != "" && !slices.Contains(ids, s) {
			ids = append(ids, s)
		}
	}
	for _, g := range inst.SecurityGroups {
		add(g.GroupId)
	}
	for _, ni := range inst.NetworkInterfaces {
		for _, g := range ni.Groups {
			add(g.GroupId)
		}
	}
	slices.Sort(ids)
	return ids
}

// Lookalike is a tagged instance that is not the stack's.
type Lookalike struct {
	ID, Why string
}

func (l Lookalike) Error(stack string) error {
	return &NotOwnedError{Kind: "instance", Name: l.ID, Stack: stack, Why: l.Why}
}

// SplitInstances separates the stack's own instances from look-alikes.
func SplitInstances(insts []ec2types.Instance, w InstanceRefs) (own []ec2types.Instance, others []Lookalike) {
	for _, i := range insts {
		if why := w.Mismatch(&i); why != "" {
			others = append(others, Lookalike{ID: aws.ToString(i.InstanceId), Why: why})
			continue
		}
		own = append(own, i)
	}
	return own, others
}

// RefsFor is instanceRefs for the stack, given its own group's id; it asks
// EC2 who owns the instances' images, unless known (images EC2 listed in
// this run) names them all.
func RefsFor(ctx context.Context, api imageAPI, n Names, sgID string, insts []ec2types.Instance, known ...ec2types.Image) (InstanceRefs, error) {
	w := InstanceRefs{ProfileARN: n.ProfileARN(), SGID: sgID, KeyName: n.KeyPair, Canonical: region.Of(n.Region).CanonicalOwner}
	owners := map[string]string{}
	for _, img := range known {
		owners[aws.ToString(img.ImageId)] = aws.ToString(img.OwnerId)
	}
	var ids []string
	for _, i := range insts {
		if id := aws.ToString(i.ImageId); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return w, nil
	}
	if !slices.ContainsFunc(ids, func(id string) bool { return owners[id] == "" }) {
		w.ImageOwner = owners
		return w, nil
	}
	// A filter, not ImageIds: an image EC2 no longer lists is not an error.
	images, err := describeImages(ctx, api, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: ids}}})
	if err != nil {
		return w, fmt.Errorf("reading the images of the stack's instances: %w", err)
	}
	w.ImageOwner = map[string]string{}
	for _, img := range images {
		w.ImageOwner[aws.ToString(img.ImageId)] = aws.ToString(img.OwnerId)
	}
	return w, nil
}

// stackInstanceAPI is what finding a stack's own instances needs.
type stackInstanceAPI interface {
	instanceAPI
	imageAPI
	SGAPI
}

// StackInstances finds the stack's own instances in the given states
// (oldest first) and the tagged look-alikes.
func StackInstances(ctx context.Context, api stackInstanceAPI, n Names, states []string) ([]ec2types.Instance, []Lookalike, error) {
	insts, err := FindInstances(ctx, api, n.Stack, states)
	if err != nil || len(insts) == 0 {
		return nil, nil, err
	}
	sgID, err := ownGroupID(ctx, api, n)
	if err != nil {
		return nil, nil, err
	}
	return splitOwn(ctx, api, n, sgID, insts)
}

// StackInstancesIn is stackInstances when the stack's own group (sgID, ""
// for none) was read already.
func StackInstancesIn(ctx context.Context, api stackInstanceAPI, n Names, sgID string, states []string) ([]ec2types.Instance, []Lookalike, error) {
	insts, err := FindInstances(ctx, api, n.Stack, states)
	if err != nil || len(insts) == 0 {
		return nil, nil, err
	}
	return splitOwn(ctx, api, n, sgID, insts)
}

// splitOwn tells the stack's own instances from tagged look-alikes.
func splitOwn(ctx context.Context, api stackInstanceAPI, n Names, sgID string, insts []ec2types.Instance) ([]ec2types.Instance, []Lookalike, error) {
	w, err := RefsFor(ctx, api, n, sgID, insts)
	if err != nil {
		return nil, nil, err
	}
	own, others := SplitInstances(insts, w)
	return own, others, nil
}

// StackHome is what the stack's IAM user (or, without one, its role) says
// about the stack: the region it lives in and the principal that made it.
type StackHome struct {
	Region, Owner string
	From          string // "IAM user NAME" or "IAM role NAME"; "" when neither exists
	// User and role are GetUser's and GetRole's answers as findHome read
	// them (nil: no such entity), for up's finders not to ask again;
	// roleRead is false when the user answered and the role was not read.
	User     *iamtypes.User
	Role     *iamtypes.Role
	RoleRead bool
}

// homeAPI reads the stack's IAM user and role.
type homeAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

// FindHome reads the stack's home from its IAM user or role. A same-named
// entity without the stack tag says nothing (finders refuse it later).
func FindHome(ctx context.Context, api homeAPI, n Names) (StackHome, error) {
	u, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return StackHome{}, fmt.Errorf("reading IAM user %s: %w", n.User, err)
	}
	var home StackHome
	if err == nil {
		home.User = u.User
		if tags := IAMTagMap(u.User.Tags); owned(tags, n.Stack) {
			home.Region, home.Owner, home.From = tags[TagRegion], tags[tagOwner], "IAM user "+n.User
			return home, nil
		}
	}
	r, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	if err != nil && !HasCode(err, "NoSuchEntity") {
		return StackHome{}, fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	}
	home.RoleRead = true
	if err == nil {
		home.Role = r.Role
		if tags := IAMTagMap(r.Role.Tags); owned(tags, n.Stack) {
			home.Region, home.Owner, home.From = tags[TagRegion], tags[tagOwner], "IAM role "+n.Role
		}
	}
	return home, nil
}

// CheckRegion refuses to work on the stack from another region than the
// one it lives in: IAM is global, so the wrong region would otherwise
// change or delete the stack's IAM side under its live server.
func (h StackHome) CheckRegion(stack, here string) error {
	if h.Region == "" || h.Region == here {
		return nil
	}
	return Usagef("stack %s lives in %s (its %s is tagged %s=%s), not in %s: pass --region %s; nothing was changed",
		stack, h.Region, h.From, TagRegion, h.Region, here, h.Region)
}

// ForeignOwner is the stack's creator when that is not the caller, else "".
func (h StackHome) ForeignOwner(caller string) string {
	if h.Owner == "" || SameOwner(h.Owner, caller) {
		return ""
	}
	return h.Owner
}

// DescribeOwner names an owner for a message; stacks made before mlstack
// recorded owners have none.
func DescribeOwner(owner string) string {
	if owner == "" {
		return "an unknown principal (the stack predates owner tags)"
	}
	return owner
}

// DriftError is a stack resource changed outside mlstack in a way that
// gives it more power or another identity than mlstack made it with:
// mlstack neither uses nor silently repairs it.
type DriftError struct {
	Kind, Name string
	What       string // what differs
	Fix        string // how to put it right
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("%s %s %s, which mlstack never sets up: mlstack will not use or change it until it is put right; %s",
		e.Kind, e.Name, e.What, e.Fix)
}
