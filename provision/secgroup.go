package provision

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

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

type sgState struct {
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
func findSecurityGroup(ctx context.Context, api sgAPI, n Names) (*sgState, error) {
	vpc, err := defaultVPC(ctx, api)
	if err != nil {
		return nil, err
	}
	st := &sgState{vpcID: vpc}
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{n.SecurityGroup}},
	}})
	if err != nil {
		return nil, fmt.Errorf("reading security group %s: %w", n.SecurityGroup, err)
	}
	if len(out.SecurityGroups) == 0 {
		return st, nil
	}
	g := out.SecurityGroups[0]
	if !owned(ec2TagMap(g.Tags), n.Stack) {
		return nil, &NotOwnedError{Kind: "security group", Name: n.SecurityGroup + " (" + aws.ToString(g.GroupId) + ")", Stack: n.Stack}
	}
	st.id = aws.ToString(g.GroupId)
	st.perms = g.IpPermissions
	st.rules = ingressRules(g.IpPermissions)
	return st, nil
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

func wantRules(cidrs []string, ports ...int32) []rule {
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
func ensureSecurityGroup(ctx context.Context, api sgAPI, st *sgState, n Names, want []rule, tags map[string]string, log *progress) error {
	if st.id == "" {
		log.step("creating security group %s", n.SecurityGroup)
		out, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName:         aws.String(n.SecurityGroup),
			Description:       aws.String("mlstack " + n.Stack + ": MLflow tracking server"),
			VpcId:             aws.String(st.vpcID),
			TagSpecifications: []ec2types.TagSpecification{ec2TagSpec(ec2types.ResourceTypeSecurityGroup, tags, n.SecurityGroup)},
		})
		switch {
		case hasCode(err, "InvalidGroup.Duplicate"):
			// Made meanwhile by a concurrent run: adopt it only if it is ours.
			again, ferr := findSecurityGroup(ctx, api, n)
			if ferr != nil {
				return ferr
			}
			*st = *again
		case err != nil:
			return fmt.Errorf("creating security group %s: %w", n.SecurityGroup, err)
		default:
			st.id = aws.ToString(out.GroupId)
		}
	}
	add, extra := ruleDiff(st.rules, want)
	if extra {
		// Revoke whole permissions that hold an unwanted rule, then re-add
		// any wanted rule that shared one of them.
		wantSet := map[rule]bool{}
		for _, r := range want {
			wantSet[r] = true
		}
		var revoke []ec2types.IpPermission
		kept := map[rule]bool{}
		for _, p := range st.perms {
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
		log.step("removing %d unwanted ingress permission(s) from %s", len(revoke), n.SecurityGroup)
		out, err := api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(st.id), IpPermissions: revoke})
		if err != nil {
			return fmt.Errorf("revoking ingress on %s: %w", n.SecurityGroup, err)
		}
		// EC2 answers success even for permissions it did not match.
		if out != nil && len(out.UnknownIpPermissions) > 0 {
			return fmt.Errorf("revoking ingress on %s: %d permission(s) not matched; run `mlstack up` again", n.SecurityGroup, len(out.UnknownIpPermissions))
		}
		add = nil
		for _, r := range want {
			if !kept[r] {
				add = append(add, r)
			}
		}
	}
	if len(add) > 0 {
		log.step("opening tcp %v to %d CIDR(s) on %s", portsOf(add), len(add), n.SecurityGroup)
		_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(st.id), IpPermissions: permissions(add, "mlstack "+n.Stack),
		})
		if err != nil && !hasCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("opening ingress on %s: %w", n.SecurityGroup, err)
		}
	}
	return nil
}

func portsOf(rules []rule) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, r := range rules {
		if !seen[r.port] {
			seen[r.port] = true
			out = append(out, r.port)
		}
	}
	return out
}

// deleteSecurityGroups deletes every group tagged with the stack. While the
// terminated instance's network interface lingers AWS answers
// DependencyViolation, so that error alone is retried until the deadline.
func deleteSecurityGroups(ctx context.Context, api sgAPI, n Names, retryFor time.Duration, log *progress) error {
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + TagStack), Values: []string{n.Stack}},
	}})
	if err != nil {
		return fmt.Errorf("listing security groups of stack %s: %w", n.Stack, err)
	}
	for _, g := range out.SecurityGroups {
		id := aws.ToString(g.GroupId)
		log.step("deleting security group %s (%s)", aws.ToString(g.GroupName), id)
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

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
