package provision

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

// profileARN is the ARN of the stack's instance profile, as EC2 reports it
// on the instances that run with it.
func (n names) profileARN() string {
	return fmt.Sprintf("arn:%s:iam::%s:instance-profile%s%s", region.Of(n.Region).Name, n.Account, iamPath, n.Profile)
}

// instanceRefs is what the stack's own instance runs with.
type instanceRefs struct {
	profileARN string
	sgID       string // the stack's own group; "" when it has none
	keyName    string
	canonical  string            // Canonical's account here; "" when unknown
	imageOwner map[string]string // image id → owner, for the images EC2 still lists
}

// mismatch says how inst differs from the stack's own instance, or "".
func (w instanceRefs) mismatch(inst *ec2types.Instance) string {
	if p := inst.IamInstanceProfile; p == nil || aws.ToString(p.Arn) != w.profileARN {
		return "it does not run with the stack's instance profile " + w.profileARN
	}
	if groups := instanceGroups(inst); w.sgID == "" || len(groups) != 1 || groups[0] != w.sgID {
		return fmt.Sprintf("its security groups %v are not the stack's group alone", groups)
	}
	if aws.ToString(inst.KeyName) != w.keyName {
		return fmt.Sprintf("its key pair %q is not the stack's %s", aws.ToString(inst.KeyName), w.keyName)
	}
	// An image EC2 no longer lists (Canonical deregisters old builds) cannot
	// be checked; the instance profile above is what cannot be forged.
	img := aws.ToString(inst.ImageId)
	if owner, ok := w.imageOwner[img]; ok && w.canonical != "" && owner != w.canonical {
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

// lookalike is a tagged instance that is not the stack's.
type lookalike struct {
	id, why string
}

func (l lookalike) error(stack string) error {
	return &notOwnedError{Kind: "instance", Name: l.id, Stack: stack, Why: l.why}
}

// splitInstances separates the stack's own instances from look-alikes.
func splitInstances(insts []ec2types.Instance, w instanceRefs) (own []ec2types.Instance, others []lookalike) {
	for _, i := range insts {
		if why := w.mismatch(&i); why != "" {
			others = append(others, lookalike{id: aws.ToString(i.InstanceId), why: why})
			continue
		}
		own = append(own, i)
	}
	return own, others
}

// refsFor is instanceRefs for the stack, given its own group's id; it asks
// EC2 who owns the instances' images, unless known (images EC2 listed in
// this run) names them all.
func refsFor(ctx context.Context, api imageAPI, n names, sgID string, insts []ec2types.Instance, known ...ec2types.Image) (instanceRefs, error) {
	w := instanceRefs{profileARN: n.profileARN(), sgID: sgID, keyName: n.KeyPair, canonical: region.Of(n.Region).CanonicalOwner}
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
		w.imageOwner = owners
		return w, nil
	}
	// A filter, not ImageIds: an image EC2 no longer lists is not an error.
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: ids}}})
	if err != nil {
		return w, fmt.Errorf("reading the images of the stack's instances: %w", err)
	}
	w.imageOwner = map[string]string{}
	for _, img := range out.Images {
		w.imageOwner[aws.ToString(img.ImageId)] = aws.ToString(img.OwnerId)
	}
	return w, nil
}

// stackInstanceAPI is what finding a stack's own instances needs.
type stackInstanceAPI interface {
	instanceAPI
	imageAPI
	sgAPI
}

// stackInstances finds the stack's own instances in the given states
// (oldest first) and the tagged look-alikes.
func stackInstances(ctx context.Context, api stackInstanceAPI, n names, states []string) ([]ec2types.Instance, []lookalike, error) {
	insts, err := findInstances(ctx, api, n.Stack, states)
	if err != nil || len(insts) == 0 {
		return nil, nil, err
	}
	sgID, err := ownGroupID(ctx, api, n)
	if err != nil {
		return nil, nil, err
	}
	return splitOwn(ctx, api, n, sgID, insts)
}

// stackInstancesIn is stackInstances when the stack's own group (sgID, ""
// for none) was read already.
func stackInstancesIn(ctx context.Context, api stackInstanceAPI, n names, sgID string, states []string) ([]ec2types.Instance, []lookalike, error) {
	insts, err := findInstances(ctx, api, n.Stack, states)
	if err != nil || len(insts) == 0 {
		return nil, nil, err
	}
	return splitOwn(ctx, api, n, sgID, insts)
}

// splitOwn tells the stack's own instances from tagged look-alikes.
func splitOwn(ctx context.Context, api stackInstanceAPI, n names, sgID string, insts []ec2types.Instance) ([]ec2types.Instance, []lookalike, error) {
	w, err := refsFor(ctx, api, n, sgID, insts)
	if err != nil {
		return nil, nil, err
	}
	own, others := splitInstances(insts, w)
	return own, others, nil
}

// stackHome is what the stack's IAM user (or, without one, its role) says
// about the stack: the region it lives in and the principal that made it.
type stackHome struct {
	region, owner string
	from          string // "IAM user NAME" or "IAM role NAME"; "" when neither exists
	// user and role are GetUser's and GetRole's answers as findHome read
	// them (nil: no such entity), for up's finders not to ask again;
	// roleRead is false when the user answered and the role was not read.
	user     *iamtypes.User
	role     *iamtypes.Role
	roleRead bool
}

// homeAPI reads the stack's IAM user and role.
type homeAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

// findHome reads the stack's home from its IAM user or role. A same-named
// entity without the stack tag says nothing (finders refuse it later).
func findHome(ctx context.Context, api homeAPI, n names) (stackHome, error) {
	u, err := api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n.User)})
	if err != nil && !hasCode(err, "NoSuchEntity") {
		return stackHome{}, fmt.Errorf("reading IAM user %s: %w", n.User, err)
	}
	var home stackHome
	if err == nil {
		home.user = u.User
		if tags := iamTagMap(u.User.Tags); owned(tags, n.Stack) {
			home.region, home.owner, home.from = tags[tagRegion], tags[tagOwner], "IAM user "+n.User
			return home, nil
		}
	}
	r, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)})
	if err != nil && !hasCode(err, "NoSuchEntity") {
		return stackHome{}, fmt.Errorf("reading IAM role %s: %w", n.Role, err)
	}
	home.roleRead = true
	if err == nil {
		home.role = r.Role
		if tags := iamTagMap(r.Role.Tags); owned(tags, n.Stack) {
			home.region, home.owner, home.from = tags[tagRegion], tags[tagOwner], "IAM role "+n.Role
		}
	}
	return home, nil
}

// checkRegion refuses to work on the stack from another region than the
// one it lives in: IAM is global, so the wrong region would otherwise
// change or delete the stack's IAM side under its live server.
func (h stackHome) checkRegion(stack, here string) error {
	if h.region == "" || h.region == here {
		return nil
	}
	return usagef("stack %s lives in %s (its %s is tagged %s=%s), not in %s: pass --region %s; nothing was changed",
		stack, h.region, h.from, tagRegion, h.region, here, h.region)
}

// foreignOwner is the stack's creator when that is not the caller, else "".
func (h stackHome) foreignOwner(caller string) string {
	if h.owner == "" || h.owner == caller {
		return ""
	}
	return h.owner
}

// describeOwner names an owner for a message; stacks made before mlstack
// recorded owners have none.
func describeOwner(owner string) string {
	if owner == "" {
		return "an unknown principal (the stack predates owner tags)"
	}
	return owner
}

// driftError is a stack resource changed outside mlstack in a way that
// gives it more power or another identity than mlstack made it with:
// mlstack neither uses nor silently repairs it.
type driftError struct {
	Kind, Name string
	What       string // what differs
	Fix        string // how to put it right
}

func (e *driftError) Error() string {
	return fmt.Sprintf("%s %s %s, which mlstack never sets up: mlstack will not use or change it until it is put right; %s",
		e.Kind, e.Name, e.What, e.Fix)
}
