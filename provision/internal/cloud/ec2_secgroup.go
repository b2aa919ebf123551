package cloud

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
	MlflowPort = 5000
	sshPort    = 22
)

// GroupWait bounds retries of a new group's eventual consistency: EC2 can
// answer InvalidGroup.NotFound for seconds after CreateSecurityGroup.
const GroupWait = time.Minute

func IsGroupPropagation(err error) bool { return HasCode(err, "InvalidGroup.NotFound") }

// SGAPI is the part of EC2 the security group needs.
type SGAPI interface {
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
}

// sgTextChars are the only characters EC2 accepts, in a VPC, in a
// security group's name, its description and a rule's description (an
// apostrophe fails CreateSecurityGroup on every retry):
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html
const sgTextChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*"

// SGText is s as EC2 accepts it in a security group text: each other
// character becomes '-', and it is cut to 255 characters. Every
// description mlstack sends goes through it; group names are made of a
// stack name's characters, which EC2 accepts as they are.
func SGText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x80 && strings.ContainsRune(sgTextChars, r) {
			return r
		}
		return '-'
	}, s)
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// Rule is one ingress permission: tcp port from one IPv4 CIDR.
type Rule struct {
	Port int32
	CIDR string
}

// SGFound is what exists of the group.
type SGFound struct {
	VpcID string
	ID    string // "" when missing
	Rules []Rule
	Perms []ec2types.IpPermission
}

func defaultVPC(ctx context.Context, api SGAPI) (string, error) {
	vpcs, err := describeVpcs(ctx, api, &ec2.DescribeVpcsInput{
		Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}},
	})
	if err != nil {
		return "", fmt.Errorf("finding the default VPC: %w", err)
	}
	if len(vpcs) == 0 {
		return "", fmt.Errorf("this region has no default VPC: create one with `aws ec2 create-default-vpc`")
	}
	return aws.ToString(vpcs[0].VpcId), nil
}

// FindSecurityGroup reads the stack's group in the default VPC.
func FindSecurityGroup(ctx context.Context, api SGAPI, n Names) (*SGFound, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	g := &SGFound{VpcID: vpc}
	groups, err := describeSecurityGroups(ctx, api, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{n.SecurityGroup}},
	}})
	if err != nil {
		return nil, fmt.Errorf("reading security group %s: %w", n.SecurityGroup, err)
	}
	if len(groups) == 0 {
		return g, nil
	}
	sg := groups[0]
	if !owned(EC2TagMap(sg.Tags), n.Stack) {
		return nil, &NotOwnedError{Kind: "security group", Name: n.SecurityGroup + " (" + aws.ToString(sg.GroupId) + ")", Stack: n.Stack}
	}
	g.ID = aws.ToString(sg.GroupId)
	g.Perms = sg.IpPermissions
	g.Rules = IngressRules(sg.IpPermissions)
	return g, nil
}

// SSHOpen reports whether the group lets tcp 22 in.
func (g *SGFound) SSHOpen() bool {
	for _, r := range g.Rules {
		if r.Port == sshPort {
			return true
		}
	}
	return false
}

// Allowed is the CIDRs that may reach the tracking server, in rule order.
func (g *SGFound) Allowed() []string {
	var out []string
	for _, r := range g.Rules {
		if r.Port == MlflowPort {
			out = append(out, r.CIDR)
		}
	}
	return out
}

// IngressRules flattens permissions into rules; anything that is not a
// single-port tcp rule from an IPv4 CIDR becomes a rule with port -1 so that
// it is revoked.
func IngressRules(perms []ec2types.IpPermission) []Rule {
	var out []Rule
	for _, p := range perms {
		single := aws.ToString(p.IpProtocol) == "tcp" && aws.ToInt32(p.FromPort) == aws.ToInt32(p.ToPort)
		for _, r := range p.IpRanges {
			port := aws.ToInt32(p.FromPort)
			if !single {
				port = -1
			}
			out = append(out, Rule{Port: port, CIDR: aws.ToString(r.CidrIp)})
		}
		if len(p.Ipv6Ranges)+len(p.UserIdGroupPairs)+len(p.PrefixListIds) > 0 {
			out = append(out, Rule{Port: -1})
		}
	}
	return out
}

// WantRules are the stack's ingress: 5000, and 22 with SSH, from each CIDR.
func WantRules(cidrs []string, ssh bool) []Rule {
	ports := []int32{MlflowPort}
	if ssh {
		ports = append(ports, sshPort)
	}
	var out []Rule
	for _, port := range ports {
		for _, c := range cidrs {
			out = append(out, Rule{Port: port, CIDR: c})
		}
	}
	return out
}

// RuleDiff returns the rules to add and whether anything else must go.
func RuleDiff(have, want []Rule) (add []Rule, extra bool) {
	hs := map[Rule]bool{}
	for _, r := range have {
		hs[r] = true
	}
	ws := map[Rule]bool{}
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
		if add[i].Port != add[j].Port {
			return add[i].Port < add[j].Port
		}
		return add[i].CIDR < add[j].CIDR
	})
	return add, extra
}

// Plan says in words what ensureSecurityGroup would do.
func (g *SGFound) Plan(n Names, want []Rule) []PlanStep {
	var p []PlanStep
	if g.ID == "" {
		p = append(p, Step(KindSG, n.SecurityGroup, "create security group %s in %s", n.SecurityGroup, g.VpcID))
	}
	if add, extra := RuleDiff(g.Rules, want); len(add) > 0 || extra {
		var cidrs []string
		for _, r := range want {
			cidrs = append(cidrs, fmt.Sprintf("tcp %d from %s", r.Port, r.CIDR))
		}
		p = append(p, Step(KindSG, n.SecurityGroup, "set ingress of %s to exactly: %s", n.SecurityGroup, strings.Join(cidrs, ", ")))
	}
	return p
}

func permissions(rules []Rule, desc string) []ec2types.IpPermission {
	var out []ec2types.IpPermission
	for _, r := range rules {
		out = append(out, ec2types.IpPermission{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(r.Port), ToPort: aws.Int32(r.Port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(r.CIDR), Description: aws.String(SGText(desc))}},
		})
	}
	return out
}

// EnsureSecurityGroup creates the group and makes its ingress exactly want.
func EnsureSecurityGroup(ctx context.Context, api SGAPI, g *SGFound, n Names, want []Rule, tags map[string]string, log Log) error {
	if g.ID == "" {
		if err := createSecurityGroup(ctx, api, g, n, tags, log); err != nil {
			return err
		}
	}
	add, extra := RuleDiff(g.Rules, want)
	if extra {
		var err error
		if add, err = revokeUnwanted(ctx, api, g, n, want, log); err != nil {
			return err
		}
	}
	if len(add) > 0 {
		for _, line := range OpeningLines(add) {
			log.Step("%s through security group %s", line, n.SecurityGroup)
		}
		err := RetryOn(ctx, GroupWait, IsGroupPropagation, nil, func() error {
			_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(g.ID), IpPermissions: permissions(add, "mlstack "+n.Stack),
			})
			return err
		})
		if err != nil && !HasCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("opening ingress on %s: %w", n.SecurityGroup, err)
		}
	}
	return nil
}

func createSecurityGroup(ctx context.Context, api SGAPI, g *SGFound, n Names, tags map[string]string, log Log) error {
	log.Step("creating security group %s", n.SecurityGroup)
	out, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(n.SecurityGroup), // a stack name's characters: see TestSGText
		Description:       aws.String(SGText("mlstack " + n.Stack + ": MLflow tracking server")),
		VpcId:             aws.String(g.VpcID),
		TagSpecifications: []ec2types.TagSpecification{EC2TagSpec(ec2types.ResourceTypeSecurityGroup, tags, n.SecurityGroup)},
	})
	switch {
	case HasCode(err, "InvalidGroup.Duplicate"):
		// Made meanwhile by a concurrent run: adopt it only if it is ours.
		again, ferr := FindSecurityGroup(ctx, api, n)
		if ferr != nil {
			return ferr
		}
		*g = *again
	case err != nil:
		return fmt.Errorf("creating security group %s: %w", n.SecurityGroup, err)
	default:
		g.ID = aws.ToString(out.GroupId)
	}
	return nil
}

// revokeUnwanted revokes whole permissions that hold an unwanted rule and
// returns the wanted rules to add again (those that shared one of them).
func revokeUnwanted(ctx context.Context, api SGAPI, g *SGFound, n Names, want []Rule, log Log) ([]Rule, error) {
	wantSet := map[Rule]bool{}
	for _, r := range want {
		wantSet[r] = true
	}
	var revoke []ec2types.IpPermission
	kept := map[Rule]bool{}
	for _, p := range g.Perms {
		rs := IngressRules([]ec2types.IpPermission{p})
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
	log.Step("removing %s the stack does not want from security group %s", Plural(len(revoke), "ingress rule"), n.SecurityGroup)
	var out *ec2.RevokeSecurityGroupIngressOutput
	err := RetryOn(ctx, GroupWait, IsGroupPropagation, nil, func() (err error) {
		out, err = api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(g.ID), IpPermissions: revoke})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoking ingress on %s: %w", n.SecurityGroup, err)
	}
	// EC2 answers success even for permissions it did not match.
	if out != nil && len(out.UnknownIpPermissions) > 0 {
		return nil, fmt.Errorf("revoking ingress on %s: %s not matched", n.SecurityGroup, Plural(len(out.UnknownIpPermissions), "permission"))
	}
	var add []Rule
	for _, r := range want {
		if !kept[r] {
			add = append(add, r)
		}
	}
	return add, nil
}

// portNames say what a port is for.
var portNames = map[int32]string{MlflowPort: "the tracking server (tcp 5000)", sshPort: "SSH (tcp 22)"}

// OpeningLines say, port by port, which CIDRs rules let in:
// "letting 198.51.100.7/32 reach the tracking server (tcp 5000)".
func OpeningLines(rules []Rule) []string {
	var ports []int32
	cidrs := map[int32][]string{}
	for _, r := range rules {
		if cidrs[r.Port] == nil {
			ports = append(ports, r.Port)
		}
		cidrs[r.Port] = append(cidrs[r.Port], r.CIDR)
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
func stackSecurityGroups(ctx context.Context, api SGAPI, n Names) ([]ec2types.SecurityGroup, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	groups, err := describeSecurityGroups(ctx, api, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		stackFilter(n.Stack),
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{n.SecurityGroup}},
	}})
	if err != nil {
		return nil, fmt.Errorf("listing security groups of stack %s: %w", n.Stack, err)
	}
	return groups, nil
}

// ownGroupID is the id of the stack's own group, or "" when it has none (a
// same-named group without the stack tag is not its own).
func ownGroupID(ctx context.Context, api SGAPI, n Names) (string, error) {
	groups, err := stackSecurityGroups(ctx, api, n)
	if err != nil || len(groups) == 0 {
		return "", err
	}
	return aws.ToString(groups[0].GroupId), nil
}

// SGInventory is the status rows of the groups the stack owns, and the
// ingress rules and id of the first ("" for none).
func SGInventory(ctx context.Context, api SGAPI, n Names) ([]Resource, []Rule, string, error) {
	groups, err := stackSecurityGroups(ctx, api, n)
	var out []Resource
	for _, g := range groups {
		out = append(out, sgRow(g))
	}
	if len(groups) == 0 {
		return out, nil, "", err
	}
	return out, IngressRules(groups[0].IpPermissions), aws.ToString(groups[0].GroupId), err
}

func sgRow(g ec2types.SecurityGroup) Resource {
	return Resource{Kind: KindSG, ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), State: StateExists}
}

// SetRules records who may reach the server and whether SSH is open.
func (info *StackInfo) SetRules(rules []Rule) {
	g := SGFound{Rules: rules}
	info.AllowedCIDRs, info.SSH = g.Allowed(), g.SSHOpen()
}

// ListSecurityGroups adds to set the stacks of every tagged group of a
// region that has its stack's name.
func ListSecurityGroups(ctx context.Context, api SGAPI, region string, set *StackSet) error {
	groups, err := describeSecurityGroups(ctx, api, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{anyStackFilter}})
	if err != nil {
		return fmt.Errorf("listing security groups in %s: %w", region, err)
	}
	for _, g := range groups {
		if tags := EC2TagMap(g.Tags); aws.ToString(g.GroupName) == NamesFor(tags[TagStack], "", region).SecurityGroup {
			set.Add(region, tags, sgRow(g), func(info *StackInfo) { info.SetRules(IngressRules(g.IpPermissions)) })
		}
	}
	return nil
}

// TagIDs are the ids that carry the group's tags.
func (g *SGFound) TagIDs() []string {
	if g.ID == "" {
		return nil
	}
	return []string{g.ID}
}

// DeleteSecurityGroups deletes the stack's groups, as the inventory found
// them (see stackSecurityGroups). While the terminated instance's network
// interface lingers AWS answers DependencyViolation, so that error alone
// is retried until the deadline.
func DeleteSecurityGroups(ctx context.Context, api SGAPI, groups []Resource, retryFor time.Duration, log Log) error {
	for _, g := range groups {
		id := g.ID
		log.Step("deleting security group %s (%s)", g.Name, id)
		err := RetryOn(ctx, retryFor, func(err error) bool { return HasCode(err, "DependencyViolation") }, nil, func() error {
			_, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
			if HasCode(err, "InvalidGroup.NotFound") {
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
