package provision

// The security group mlstack-<stack> in the default VPC: tcp 5000 from the
// allowed CIDRs, tcp 22 from the same CIDRs only with --ssh, nothing else.

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	mlflowPort = 5000
	sshPort    = 22
)

// groupWait bounds retries of a new group's eventual consistency: EC2 can
// answer InvalidGroup.NotFound for seconds after CreateSecurityGroup.
const groupWait = time.Minute

func isGroupPropagation(err error) bool { return hasCode(err, "InvalidGroup.NotFound") }

// sgAPI is the part of EC2 the security group needs.
type sgAPI interface {
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
}

// rule is one ingress permission: tcp port from one IPv4 CIDR.
type rule struct {
	port int32
	cidr string
}

// sgFound is what exists of the group.
type sgFound struct {
	vpcID string
	id    string // "" when missing
	rules []rule
	perms []ec2types.IpPermission
}

func defaultVPC(ctx context.Context, api sgAPI) (string, error) {
	out, err := api.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{
		Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}},
	})
	if err != nil {
		return "", fmt.Errorf("finding the default VPC: %w", err)
	}
	if len(out.Vpcs) == 0 {
		return "", fmt.Errorf("this region has no default VPC: create one with `aws ec2 create-default-vpc`")
	}
	return aws.ToString(out.Vpcs[0].VpcId), nil
}

// findSecurityGroup reads the stack's group in the default VPC.
func findSecurityGroup(ctx context.Context, api sgAPI, n names) (*sgFound, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	g := &sgFound{vpcID: vpc}
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{n.SecurityGroup}},
	}})
	if err != nil {
		return nil, fmt.Errorf("reading security group %s: %w", n.SecurityGroup, err)
	}
	if len(out.SecurityGroups) == 0 {
		return g, nil
	}
	sg := out.SecurityGroups[0]
	if !owned(ec2TagMap(sg.Tags), n.Stack) {
		return nil, &notOwnedError{Kind: "security group", Name: n.SecurityGroup + " (" + aws.ToString(sg.GroupId) + ")", Stack: n.Stack}
	}
	g.id = aws.ToString(sg.GroupId)
	g.perms = sg.IpPermissions
	g.rules = ingressRules(sg.IpPermissions)
	return g, nil
}

// sshOpen reports whether the group lets tcp 22 in.
func (g *sgFound) sshOpen() bool {
	for _, r := range g.rules {
		if r.port == sshPort {
			return true
		}
	}
	return false
}

// allowed is the CIDRs that may reach the tracking server, in rule order.
func (g *sgFound) allowed() []string {
	var out []string
	for _, r := range g.rules {
		if r.port == mlflowPort {
			out = append(out, r.cidr)
		}
	}
	return out
}

// ingressRules flattens permissions into rules; anything that is not a
// single-port tcp rule from an IPv4 CIDR becomes a rule with port -1 so that
// it is revoked.
func ingressRules(perms []ec2types.IpPermission) []rule {
	var out []rule
	for _, p := range perms {
		single := aws.ToString(p.IpProtocol) == "tcp" && aws.ToInt32(p.FromPort) == aws.ToInt32(p.ToPort)
		for _, r := range p.IpRanges {
			port := aws.ToInt32(p.FromPort)
			if !single {
				port = -1
			}
			out = append(out, rule{port: port, cidr: aws.ToString(r.CidrIp)})
		}
		if len(p.Ipv6Ranges)+len(p.UserIdGroupPairs)+len(p.PrefixListIds) > 0 {
			out = append(out, rule{port: -1})
		}
	}
	return out
}

// wantRules are the stack's ingress: 5000, and 22 with SSH, from each CIDR.
func wantRules(cidrs []string, ssh bool) []rule {
	ports := []int32{mlflowPort}
	if ssh {
		ports = append(ports, sshPort)
	}
	var out []rule
	for _, port := range ports {
		for _, c := range cidrs {
			out = append(out, rule{port: port, cidr: c})
		}
	}
	return out
}

// ruleDiff returns the rules to add and whether anything else must go.
func ruleDiff(have, want []rule) (add []rule, extra bool) {
	hs := map[rule]bool{}
	for _, r := range have {
		hs[r] = true
	}
	ws := map[rule]bool{}
	for _, r := range want {
		ws[r] = true
		if !hs[r] {
			add = append(add, r)
		}
	}
	for r := range hs {
		if !ws[r] {
			extra = true
		}
	}
	sort.Slice(add, func(i, j int) bool {
		if add[i].port != add[j].port {
			return add[i].port < add[j].port
		}
		return add[i].cidr < add[j].cidr
	})
	return add, extra
}

// plan says in words what ensureSecurityGroup would do.
func (g *sgFound) plan(n names, want []rule) []planStep {
	var p []planStep
	if g.id == "" {
		p = append(p, step(kindSG, n.SecurityGroup, "create security group %s in %s", n.SecurityGroup, g.vpcID))
	}
	if add, extra := ruleDiff(g.rules, want); len(add) > 0 || extra {
		var cidrs []string
		for _, r := range want {
			cidrs = append(cidrs, fmt.Sprintf("tcp %d from %s", r.port, r.cidr))
		}
		p = append(p, step(kindSG, n.SecurityGroup, "set ingress of %s to exactly: %s", n.SecurityGroup, strings.Join(cidrs, ", ")))
	}
	return p
}

func permissions(rules []rule, desc string) []ec2types.IpPermission {
	var out []ec2types.IpPermission
	for _, r := range rules {
		out = append(out, ec2types.IpPermission{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(r.port), ToPort: aws.Int32(r.port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(r.cidr), Description: aws.String(desc)}},
		})
	}
	return out
}

// ensureSecurityGroup creates the group and makes its ingress exactly want.
func ensureSecurityGroup(ctx context.Context, api sgAPI, g *sgFound, n names, want []rule, tags map[string]string, log Log) error {
	if g.id == "" {
		if err := createSecurityGroup(ctx, api, g, n, tags, log); err != nil {
			return err
		}
	}
	add, extra := ruleDiff(g.rules, want)
	if extra {
		var err error
		if add, err = revokeUnwanted(ctx, api, g, n, want, log); err != nil {
			return err
		}
	}
	if len(add) > 0 {
		for _, line := range openingLines(add) {
			log.Step("%s through security group %s", line, n.SecurityGroup)
		}
		err := retryOn(ctx, groupWait, isGroupPropagation, nil, func() error {
			_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(g.id), IpPermissions: permissions(add, "mlstack "+n.Stack),
			})
			return err
		})
		if err != nil && !hasCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("opening ingress on %s: %w", n.SecurityGroup, err)
		}
	}
	return nil
}

func createSecurityGroup(ctx context.Context, api sgAPI, g *sgFound, n names, tags map[string]string, log Log) error {
	log.Step("creating security group %s", n.SecurityGroup)
	out, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(n.SecurityGroup),
		Description:       aws.String("mlstack " + n.Stack + ": MLflow tracking server"),
		VpcId:             aws.String(g.vpcID),
		TagSpecifications: []ec2types.TagSpecification{ec2TagSpec(ec2types.ResourceTypeSecurityGroup, tags, n.SecurityGroup)},
	})
	switch {
	case hasCode(err, "InvalidGroup.Duplicate"):
		// Made meanwhile by a concurrent run: adopt it only if it is ours.
		again, ferr := findSecurityGroup(ctx, api, n)
		if ferr != nil {
			return ferr
		}
		*g = *again
	case err != nil:
		return fmt.Errorf("creating security group %s: %w", n.SecurityGroup, err)
	default:
		g.id = aws.ToString(out.GroupId)
	}
	return nil
}

// revokeUnwanted revokes whole permissions that hold an unwanted rule and
// returns the wanted rules to add again (those that shared one of them).
func revokeUnwanted(ctx context.Context, api sgAPI, g *sgFound, n names, want []rule, log Log) ([]rule, error) {
	wantSet := map[rule]bool{}
	for _, r := range want {
		wantSet[r] = true
	}
	var revoke []ec2types.IpPermission
	kept := map[rule]bool{}
	for _, p := range g.perms {
		rs := ingressRules([]ec2types.IpPermission{p})
		bad := false
		for _, r := range rs {
			bad = bad || !wantSet[r]
		}
		if bad {
			revoke = append(revoke, p)
			continue
		}
		for _, r := range rs {
			kept[r] = true
		}
	}
	log.Step("removing %s the stack does not want from security group %s", plural(len(revoke), "ingress rule"), n.SecurityGroup)
	var out *ec2.RevokeSecurityGroupIngressOutput
	err := retryOn(ctx, groupWait, isGroupPropagation, nil, func() (err error) {
		out, err = api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(g.id), IpPermissions: revoke})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoking ingress on %s: %w", n.SecurityGroup, err)
	}
	// EC2 answers success even for permissions it did not match.
	if out != nil && len(out.UnknownIpPermissions) > 0 {
		return nil, fmt.Errorf("revoking ingress on %s: %s not matched", n.SecurityGroup, plural(len(out.UnknownIpPermissions), "permission"))
	}
	var add []rule
	for _, r := range want {
		if !kept[r] {
			add = append(add, r)
		}
	}
	return add, nil
}

// portNames say what a port is for.
var portNames = map[int32]string{mlflowPort: "the tracking server (tcp 5000)", sshPort: "SSH (tcp 22)"}

// openingLines say, port by port, which CIDRs rules let in:
// "letting 198.51.100.7/32 reach the tracking server (tcp 5000)".
func openingLines(rules []rule) []string {
	var ports []int32
	cidrs := map[int32][]string{}
	for _, r := range rules {
		if cidrs[r.port] == nil {
			ports = append(ports, r.port)
		}
		cidrs[r.port] = append(cidrs[r.port], r.cidr)
	}
	var out []string
	for _, p := range ports {
		what := cmp.Or(portNames[p], fmt.Sprintf("tcp %d", p))
		out = append(out, fmt.Sprintf("letting %s reach %s", strings.Join(cidrs[p], ", "), what))
	}
	return out
}

// stackSecurityGroups lists the stack's group: the derived name in the
// default VPC, tagged with the stack. A tagged group of another name, or in
// another VPC, is not the stack's, whatever its tag says.
func stackSecurityGroups(ctx context.Context, api sgAPI, n names) ([]ec2types.SecurityGroup, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		stackFilter(n.Stack),
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{n.SecurityGroup}},
	}})
	if err != nil {
		return nil, fmt.Errorf("listing security groups of stack %s: %w", n.Stack, err)
	}
	return out.SecurityGroups, nil
}

// ownGroupID is the id of the stack's own group, or "" when it has none (a
// same-named group without the stack tag is not its own).
func ownGroupID(ctx context.Context, api sgAPI, n names) (string, error) {
	groups, err := stackSecurityGroups(ctx, api, n)
	if err != nil || len(groups) == 0 {
		return "", err
	}
	return aws.ToString(groups[0].GroupId), nil
}

// sgInventory is the status rows of the groups the stack owns, and the
// ingress rules and id of the first ("" for none).
func sgInventory(ctx context.Context, api sgAPI, n names) ([]resource, []rule, string, error) {
	groups, err := stackSecurityGroups(ctx, api, n)
	var out []resource
	for _, g := range groups {
		out = append(out, sgRow(g))
	}
	if len(groups) == 0 {
		return out, nil, "", err
	}
	return out, ingressRules(groups[0].IpPermissions), aws.ToString(groups[0].GroupId), err
}

func sgRow(g ec2types.SecurityGroup) resource {
	return resource{Kind: kindSG, ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), State: stateExists}
}

// setRules records who may reach the server and whether SSH is open.
func (info *stackInfo) setRules(rules []rule) {
	g := sgFound{rules: rules}
	info.AllowedCIDRs, info.SSH = g.allowed(), g.sshOpen()
}

// listSecurityGroups adds to set the stacks of every tagged group of a
// region that has its stack's name.
func listSecurityGroups(ctx context.Context, api sgAPI, region string, set *stackSet) error {
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{anyStackFilter}})
	if err != nil {
		return fmt.Errorf("listing security groups in %s: %w", region, err)
	}
	for _, g := range out.SecurityGroups {
		if tags := ec2TagMap(g.Tags); aws.ToString(g.GroupName) == namesFor(tags[tagStack], "", region).SecurityGroup {
			set.add(region, tags, sgRow(g), func(info *stackInfo) { info.setRules(ingressRules(g.IpPermissions)) })
		}
	}
	return nil
}

// tagIDs are the ids that carry the group's tags.
func (g *sgFound) tagIDs() []string {
	if g.id == "" {
		return nil
	}
	return []string{g.id}
}

// deleteSecurityGroups deletes the stack's groups, as the inventory found
// them (see stackSecurityGroups). While the terminated instance's network
// interface lingers AWS answers DependencyViolation, so that error alone
// is retried until the deadline.
func deleteSecurityGroups(ctx context.Context, api sgAPI, groups []resource, retryFor time.Duration, log Log) error {
	for _, g := range groups {
		id := g.ID
		log.Step("deleting security group %s (%s)", g.Name, id)
		err := retryOn(ctx, retryFor, func(err error) bool { return hasCode(err, "DependencyViolation") }, nil, func() error {
			_, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
			if hasCode(err, "InvalidGroup.NotFound") {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("deleting security group %s: %w", id, err)
		}
	}
	return nil
}
