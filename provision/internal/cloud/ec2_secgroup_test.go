package cloud_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/internal/awsmodel"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func tcpPerm(port int32, cidrs ...string) ec2types.IpPermission {
	p := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	for _, c := range cidrs {
		p.IpRanges = append(p.IpRanges, ec2types.IpRange{CidrIp: aws.String(c)})
	}
	return p
}

func sortRules(rs []cloud.Rule) []cloud.Rule {
	out := append([]cloud.Rule(nil), rs...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].CIDR < out[j].CIDR
	})
	return out
}

func TestIngressRules(t *testing.T) {
	t.Parallel()
	const a, b = "198.51.100.7/32", "203.0.113.0/24"
	tests := []struct {
		name  string
		perms []ec2types.IpPermission
		want  []cloud.Rule
	}{
		{"none", nil, nil},
		{"single port, two CIDRs", []ec2types.IpPermission{tcpPerm(5000, a, b)}, []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: b}}},
		{"two permissions", []ec2types.IpPermission{tcpPerm(5000, a), tcpPerm(22, a)}, []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 22, CIDR: a}}},
		{"port range becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5001),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(a)}},
		}}, []cloud.Rule{{Port: -1, CIDR: a}}},
		{"all traffic becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		}}, []cloud.Rule{{Port: -1, CIDR: "0.0.0.0/0"}}},
		{"udp single port becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("udp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(a)}},
		}}, []cloud.Rule{{Port: -1, CIDR: a}}},
		{"IPv6 range becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
		}}, []cloud.Rule{{Port: -1}}},
		{"group pair becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-other")}},
		}}, []cloud.Rule{{Port: -1}}},
		{"prefix list becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			PrefixListIds: []ec2types.PrefixListId{{PrefixListId: aws.String("pl-1")}},
		}}, []cloud.Rule{{Port: -1}}},
		// A wanted CIDR sharing a permission with an IPv6 range keeps its own rule.
		{"mixed IPv4 and IPv6", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			IpRanges:   []ec2types.IpRange{{CidrIp: aws.String(a)}},
			Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
		}}, []cloud.Rule{{Port: 5000, CIDR: a}, {Port: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cloud.IngressRules(tt.perms)
			if fmt.Sprint(sortRules(got)) != fmt.Sprint(sortRules(tt.want)) {
				t.Errorf("ingressRules = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWantRules(t *testing.T) {
	t.Parallel()
	got := cloud.WantRules([]string{"198.51.100.7/32", "203.0.113.0/24"}, true)
	want := []cloud.Rule{{Port: 5000, CIDR: "198.51.100.7/32"}, {Port: 5000, CIDR: "203.0.113.0/24"}, {Port: 22, CIDR: "198.51.100.7/32"}, {Port: 22, CIDR: "203.0.113.0/24"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("wantRules = %v, want %v", got, want)
	}
	if got := cloud.WantRules([]string{"198.51.100.7/32"}, false); fmt.Sprint(got) != fmt.Sprint([]cloud.Rule{{Port: 5000, CIDR: "198.51.100.7/32"}}) {
		t.Errorf("wantRules without SSH = %v, want only 5000", got)
	}
	if got := cloud.WantRules(nil, true); len(got) != 0 {
		t.Errorf("wantRules(nil) = %v, want none", got)
	}
}

func TestRuleDiff(t *testing.T) {
	t.Parallel()
	const a, b, c = "198.51.100.7/32", "203.0.113.0/24", "192.0.2.1/32"
	tests := []struct {
		name      string
		have      []cloud.Rule
		want      []cloud.Rule
		wantAdd   []cloud.Rule
		wantExtra bool
	}{
		{"empty group", nil, []cloud.Rule{{Port: 5000, CIDR: a}}, []cloud.Rule{{Port: 5000, CIDR: a}}, false},
		{"up to date", []cloud.Rule{{Port: 5000, CIDR: a}}, []cloud.Rule{{Port: 5000, CIDR: a}}, nil, false},
		{"missing one", []cloud.Rule{{Port: 5000, CIDR: a}}, []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: c}}, []cloud.Rule{{Port: 5000, CIDR: c}}, false},
		{"extra one", []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: b}}, []cloud.Rule{{Port: 5000, CIDR: a}}, nil, true},
		{"extra port", []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 22, CIDR: a}}, []cloud.Rule{{Port: 5000, CIDR: a}}, nil, true},
		{"foreign rule", []cloud.Rule{{Port: 5000, CIDR: a}, {Port: -1}}, []cloud.Rule{{Port: 5000, CIDR: a}}, nil, true},
		{"add and extra, sorted", []cloud.Rule{{Port: 5000, CIDR: b}}, []cloud.Rule{{Port: 5000, CIDR: c}, {Port: 22, CIDR: a}, {Port: 5000, CIDR: a}},
			[]cloud.Rule{{Port: 22, CIDR: a}, {Port: 5000, CIDR: c}, {Port: 5000, CIDR: a}}, true}, // by port, then CIDR string
		{"want nothing", []cloud.Rule{{Port: 5000, CIDR: a}}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, extra := cloud.RuleDiff(tt.have, tt.want)
			if fmt.Sprint(add) != fmt.Sprint(tt.wantAdd) || extra != tt.wantExtra {
				t.Errorf("ruleDiff = %v, %v; want %v, %v", add, extra, tt.wantAdd, tt.wantExtra)
			}
		})
	}
}

// fakeSG is a narrow hand-written sgAPI: it records calls and answers from
// canned data. It models no EC2 semantics beyond what each test sets up.
type fakeSG struct {
	calls     []string
	groups    []ec2types.SecurityGroup
	revoked   [][]ec2types.IpPermission
	granted   [][]ec2types.IpPermission
	deleteErr []error // returned by successive DeleteSecurityGroup calls; nil after
	deleted   []string
}

func (f *fakeSG) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	f.calls = append(f.calls, "DescribeVpcs")
	return &ec2.DescribeVpcsOutput{Vpcs: []ec2types.Vpc{{VpcId: aws.String("vpc-1")}}}, nil
}

func (f *fakeSG) DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	f.calls = append(f.calls, "DescribeSecurityGroups")
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: f.groups}, nil
}

func (f *fakeSG) CreateSecurityGroup(_ context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	f.calls = append(f.calls, "CreateSecurityGroup")
	return &ec2.CreateSecurityGroupOutput{GroupId: aws.String("sg-new")}, nil
}

func (f *fakeSG) DeleteSecurityGroup(_ context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	f.calls = append(f.calls, "DeleteSecurityGroup")
	if len(f.deleteErr) > 0 {
		err := f.deleteErr[0]
		f.deleteErr = f.deleteErr[1:]
		if err != nil {
			return nil, err
		}
	}
	f.deleted = append(f.deleted, aws.ToString(in.GroupId))
	return &ec2.DeleteSecurityGroupOutput{}, nil
}

func (f *fakeSG) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	f.calls = append(f.calls, "AuthorizeSecurityGroupIngress")
	f.granted = append(f.granted, in.IpPermissions)
	return &ec2.AuthorizeSecurityGroupIngressOutput{}, nil
}

func (f *fakeSG) RevokeSecurityGroupIngress(_ context.Context, in *ec2.RevokeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	f.calls = append(f.calls, "RevokeSecurityGroupIngress")
	f.revoked = append(f.revoked, in.IpPermissions)
	return &ec2.RevokeSecurityGroupIngressOutput{}, nil
}

func (f *fakeSG) mutating() []string {
	var out []string
	for _, c := range f.calls {
		if cloud.IsMutating("EC2." + c) {
			out = append(out, c)
		}
	}
	return out
}

func flatRules(calls [][]ec2types.IpPermission) []cloud.Rule {
	var all []ec2types.IpPermission
	for _, c := range calls {
		all = append(all, c...)
	}
	return sortRules(cloud.IngressRules(all))
}

func TestEnsureSecurityGroup(t *testing.T) {
	t.Parallel()
	const a, b, c = "198.51.100.7/32", "203.0.113.0/24", "192.0.2.1/32"
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	tests := []struct {
		name        string
		st          cloud.SGFound
		want        []cloud.Rule
		wantRevoked []cloud.Rule // flattened rules of the revoked permissions
		wantGranted []cloud.Rule
		wantCalls   string
	}{
		{
			// EC2 groups CIDRs of one port into one permission: revoking B takes A with it.
			name: "shared permission: revoke B and 22, re-authorize A, authorize C",
			st: cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Perms: []ec2types.IpPermission{
				tcpPerm(5000, a, b), tcpPerm(22, a),
			}},
			want:        []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: c}},
			wantRevoked: []cloud.Rule{{Port: 22, CIDR: a}, {Port: 5000, CIDR: a}, {Port: 5000, CIDR: b}},
			wantGranted: []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: c}},
			wantCalls:   "[RevokeSecurityGroupIngress AuthorizeSecurityGroupIngress]",
		},
		{
			// A in its own permission object is kept and not re-authorized.
			name: "separate permissions: revoke B and 22, authorize exactly C",
			st: cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Perms: []ec2types.IpPermission{
				tcpPerm(5000, a), tcpPerm(5000, b), tcpPerm(22, a),
			}},
			want:        []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: c}},
			wantRevoked: []cloud.Rule{{Port: 22, CIDR: a}, {Port: 5000, CIDR: b}},
			wantGranted: []cloud.Rule{{Port: 5000, CIDR: c}},
			wantCalls:   "[RevokeSecurityGroupIngress AuthorizeSecurityGroupIngress]",
		},
		{
			name:      "up to date: no mutating call",
			st:        cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Perms: []ec2types.IpPermission{tcpPerm(5000, a, c)}},
			want:      []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: c}},
			wantCalls: "[]",
		},
		{
			name:        "missing rule only: authorize, no revoke",
			st:          cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Perms: []ec2types.IpPermission{tcpPerm(5000, a)}},
			want:        []cloud.Rule{{Port: 5000, CIDR: a}, {Port: 5000, CIDR: c}},
			wantGranted: []cloud.Rule{{Port: 5000, CIDR: c}},
			wantCalls:   "[AuthorizeSecurityGroupIngress]",
		},
		{
			name: "foreign IPv6 rule is revoked",
			st: cloud.SGFound{VpcID: "vpc-1", ID: "sg-1", Perms: []ec2types.IpPermission{tcpPerm(5000, a), {
				IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
				Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
			}}},
			want:        []cloud.Rule{{Port: 5000, CIDR: a}},
			wantRevoked: []cloud.Rule{{Port: -1}},
			wantCalls:   "[RevokeSecurityGroupIngress]",
		},
		{
			name:        "new group: create then authorize",
			st:          cloud.SGFound{VpcID: "vpc-1"},
			want:        []cloud.Rule{{Port: 5000, CIDR: a}},
			wantGranted: []cloud.Rule{{Port: 5000, CIDR: a}},
			wantCalls:   "[CreateSecurityGroup AuthorizeSecurityGroupIngress]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			st.Rules = cloud.IngressRules(st.Perms) // as findSecurityGroup fills it
			f := &fakeSG{}
			if err := cloud.EnsureSecurityGroup(context.Background(), f, &st, n, tt.want, cloud.StackTags("demo", "eu-west-3", cloudfake.FakeOwner, time.Now(), 0), newProgress(io.Discard)); err != nil {
				t.Fatalf("ensureSecurityGroup: %v", err)
			}
			if got := fmt.Sprint(f.mutating()); got != tt.wantCalls {
				t.Errorf("mutating calls = %s, want %s", got, tt.wantCalls)
			}
			if got := flatRules(f.revoked); fmt.Sprint(got) != fmt.Sprint(sortRules(tt.wantRevoked)) {
				t.Errorf("revoked %v, want %v", got, sortRules(tt.wantRevoked))
			}
			if got := flatRules(f.granted); fmt.Sprint(got) != fmt.Sprint(sortRules(tt.wantGranted)) {
				t.Errorf("authorized %v, want %v", got, sortRules(tt.wantGranted))
			}
			if st.ID == "" {
				t.Error("state has no group id afterwards")
			}
		})
	}
}

// An authorize racing another `up` may find the rule already there: not an error.
func TestEnsureSecurityGroupToleratesDuplicate(t *testing.T) {
	t.Parallel()
	f := &dupSG{}
	st := &cloud.SGFound{VpcID: "vpc-1", ID: "sg-1"}
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	if err := cloud.EnsureSecurityGroup(context.Background(), f, st, n, []cloud.Rule{{Port: 5000, CIDR: "198.51.100.7/32"}}, nil, newProgress(io.Discard)); err != nil {
		t.Fatalf("InvalidPermission.Duplicate not tolerated: %v", err)
	}
}

type dupSG struct{ fakeSG }

func (f *dupSG) AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "InvalidPermission.Duplicate", Message: "the specified rule already exists"}
}

func TestFindSecurityGroupRefusesUntagged(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	tests := []struct {
		name     string
		tags     []ec2types.Tag
		notOwned bool
	}{
		{"untagged", nil, true},
		{"other stack", []ec2types.Tag{{Key: aws.String(cloud.TagStack), Value: aws.String("other")}}, true},
		{"ours", []ec2types.Tag{{Key: aws.String(cloud.TagStack), Value: aws.String("demo")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSG{groups: []ec2types.SecurityGroup{{
				GroupId: aws.String("sg-1"), GroupName: aws.String(n.SecurityGroup), Tags: tt.tags,
				IpPermissions: []ec2types.IpPermission{tcpPerm(5000, "198.51.100.7/32")},
			}}}
			st, err := cloud.FindSecurityGroup(context.Background(), f, n)
			var no *cloud.NotOwnedError
			if got := errors.As(err, &no); got != tt.notOwned {
				t.Fatalf("findSecurityGroup error = %v, want notOwnedError: %v", err, tt.notOwned)
			}
			if !tt.notOwned && (st.ID != "sg-1" || st.VpcID != "vpc-1" || len(st.Rules) != 1) {
				t.Errorf("state = %+v", st)
			}
		})
	}
}

func dependencyViolation() error {
	return &smithy.GenericAPIError{Code: "DependencyViolation", Message: "resource sg-1 has a dependent object"}
}

// sgRows is the inventory's row of the stack's group sg-1.
func sgRows(n cloud.Names) []cloud.Resource {
	return []cloud.Resource{{Kind: cloud.KindSG, ID: "sg-1", Name: n.SecurityGroup, State: cloud.StateExists}}
}

// While a terminated instance's interface lingers, deletion answers
// DependencyViolation; it must be retried (every 5 s), other errors must not.
func TestDeleteSecurityGroupsRetriesDependencyViolation(t *testing.T) {
	t.Parallel() // sleeps 2 × 5 s
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	f := &fakeSG{
		groups:    []ec2types.SecurityGroup{{GroupId: aws.String("sg-1"), GroupName: aws.String(n.SecurityGroup)}},
		deleteErr: []error{dependencyViolation(), dependencyViolation()},
	}
	start := time.Now()
	if err := cloud.DeleteSecurityGroups(context.Background(), f, sgRows(n), time.Minute, newProgress(io.Discard)); err != nil {
		t.Fatalf("deleteSecurityGroups: %v", err)
	}
	if got := strings.Count(fmt.Sprint(f.calls), "DeleteSecurityGroup"); got != 3 {
		t.Errorf("DeleteSecurityGroup called %d times, want 3", got)
	}
	if fmt.Sprint(f.deleted) != "[sg-1]" {
		t.Errorf("deleted %v", f.deleted)
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

func TestDeleteSecurityGroupsErrors(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	tests := []struct {
		name      string
		errs      []error
		retryFor  time.Duration
		wantErr   bool
		wantCalls int
	}{
		{"not found counts as done", []error{&smithy.GenericAPIError{Code: "InvalidGroup.NotFound"}}, time.Minute, false, 1},
		{"other error not retried", []error{&smithy.GenericAPIError{Code: "UnauthorizedOperation"}}, time.Minute, true, 1},
		// With no time left the DependencyViolation is returned, not slept on.
		{"deadline passed", []error{dependencyViolation()}, 0, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSG{
				groups:    []ec2types.SecurityGroup{{GroupId: aws.String("sg-1"), GroupName: aws.String(n.SecurityGroup)}},
				deleteErr: tt.errs,
			}
			start := time.Now()
			err := cloud.DeleteSecurityGroups(context.Background(), f, sgRows(n), tt.retryFor, newProgress(io.Discard))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got := strings.Count(fmt.Sprint(f.calls), "DeleteSecurityGroup"); got != tt.wantCalls {
				t.Errorf("DeleteSecurityGroup called %d times, want %d", got, tt.wantCalls)
			}
			if time.Since(start) > time.Second {
				t.Errorf("took %s: slept without reason", time.Since(start))
			}
		})
	}
}

// A cancelled context stops the retry loop during its sleep.
func TestDeleteSecurityGroupsCancelled(t *testing.T) {
	t.Parallel()
	n := cloud.NamesFor("demo", "123456789012", "eu-west-3")
	f := &fakeSG{
		groups:    []ec2types.SecurityGroup{{GroupId: aws.String("sg-1")}},
		deleteErr: []error{dependencyViolation(), dependencyViolation()},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := cloud.DeleteSecurityGroups(ctx, f, sgRows(n), time.Minute, newProgress(io.Discard))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s after cancellation", time.Since(start))
	}
}

// TestOpeningLines: the progress says in words who may reach what, one
// line per port, in the order the rules come.
func TestOpeningLines(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rules []cloud.Rule
		want  []string
	}{
		{nil, nil},
		{[]cloud.Rule{{Port: 5000, CIDR: "198.51.100.7/32"}}, []string{"letting 198.51.100.7/32 reach the tracking server (tcp 5000)"}},
		{[]cloud.Rule{{Port: 5000, CIDR: "198.51.100.7/32"}, {Port: 22, CIDR: "198.51.100.7/32"}, {Port: 5000, CIDR: "203.0.113.0/24"}}, []string{
			"letting 198.51.100.7/32, 203.0.113.0/24 reach the tracking server (tcp 5000)",
			"letting 198.51.100.7/32 reach SSH (tcp 22)",
		}},
		{[]cloud.Rule{{Port: 8080, CIDR: "0.0.0.0/0"}}, []string{"letting 0.0.0.0/0 reach tcp 8080"}},
	} {
		if got := cloud.OpeningLines(c.rules); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("openingLines(%v) = %q, want %q", c.rules, got, c.want)
		}
	}
}

// TestSGText: what SGText makes of any text EC2 accepts (the model's rule),
// and the group names, derived from stack names, need no mapping.
func TestSGText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"mlstack demo: MLflow tracking server", "mlstack demo: MLflow tracking server"},
		{"the server's group", "the server-s group"},
		{"café – ok", "caf- - ok"},
		{strings.Repeat("x", 300), strings.Repeat("x", 255)},
	} {
		got := cloud.SGText(c.in)
		if got != c.want {
			t.Errorf("SGText(%q) = %q, want %q", c.in, got, c.want)
		}
		if err := awsmodel.SecurityGroupText("GroupDescription", got); err != nil {
			t.Errorf("SGText(%q): EC2 refuses it: %v", c.in, err)
		}
	}
	for _, stack := range []string{"a", "demo", "a-b-c", strings.Repeat("z9", cloud.MaxStackLen/2)} {
		must(t, cloud.ValidateStack(stack))
		n := cloud.NamesFor(stack, "123456789012", "eu-west-3")
		for _, name := range []string{n.SecurityGroup, n.DBSecurityGroup} {
			if err := awsmodel.SecurityGroupText("GroupName", name); err != nil {
				t.Errorf("stack %q: %v", stack, err)
			}
		}
	}
}
