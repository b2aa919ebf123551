package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

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

func sortRules(rs []rule) []rule {
	out := append([]rule(nil), rs...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].port != out[j].port {
			return out[i].port < out[j].port
		}
		return out[i].cidr < out[j].cidr
	})
	return out
}

func TestIngressRules(t *testing.T) {
	t.Parallel()
	const a, b = "198.51.100.7/32", "203.0.113.0/24"
	tests := []struct {
		name  string
		perms []ec2types.IpPermission
		want  []rule
	}{
		{"none", nil, nil},
		{"single port, two CIDRs", []ec2types.IpPermission{tcpPerm(5000, a, b)}, []rule{{5000, a}, {5000, b}}},
		{"two permissions", []ec2types.IpPermission{tcpPerm(5000, a), tcpPerm(22, a)}, []rule{{5000, a}, {22, a}}},
		{"port range becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5001),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(a)}},
		}}, []rule{{-1, a}}},
		{"all traffic becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		}}, []rule{{-1, "0.0.0.0/0"}}},
		{"udp single port becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("udp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(a)}},
		}}, []rule{{-1, a}}},
		{"IPv6 range becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
		}}, []rule{{port: -1}}},
		{"group pair becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-other")}},
		}}, []rule{{port: -1}}},
		{"prefix list becomes -1", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			PrefixListIds: []ec2types.PrefixListId{{PrefixListId: aws.String("pl-1")}},
		}}, []rule{{port: -1}}},
		// A wanted CIDR sharing a permission with an IPv6 range keeps its own rule.
		{"mixed IPv4 and IPv6", []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
			IpRanges:   []ec2types.IpRange{{CidrIp: aws.String(a)}},
			Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
		}}, []rule{{5000, a}, {port: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ingressRules(tt.perms)
			if fmt.Sprint(sortRules(got)) != fmt.Sprint(sortRules(tt.want)) {
				t.Errorf("ingressRules = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWantRules(t *testing.T) {
	t.Parallel()
	got := wantRules([]string{"198.51.100.7/32", "203.0.113.0/24"}, true)
	want := []rule{{5000, "198.51.100.7/32"}, {5000, "203.0.113.0/24"}, {22, "198.51.100.7/32"}, {22, "203.0.113.0/24"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("wantRules = %v, want %v", got, want)
	}
	if got := wantRules([]string{"198.51.100.7/32"}, false); fmt.Sprint(got) != fmt.Sprint([]rule{{5000, "198.51.100.7/32"}}) {
		t.Errorf("wantRules without SSH = %v, want only 5000", got)
	}
	if got := wantRules(nil, true); len(got) != 0 {
		t.Errorf("wantRules(nil) = %v, want none", got)
	}
}

func TestRuleDiff(t *testing.T) {
	t.Parallel()
	const a, b, c = "198.51.100.7/32", "203.0.113.0/24", "192.0.2.1/32"
	tests := []struct {
		name      string
		have      []rule
		want      []rule
		wantAdd   []rule
		wantExtra bool
	}{
		{"empty group", nil, []rule{{5000, a}}, []rule{{5000, a}}, false},
		{"up to date", []rule{{5000, a}}, []rule{{5000, a}}, nil, false},
		{"missing one", []rule{{5000, a}}, []rule{{5000, a}, {5000, c}}, []rule{{5000, c}}, false},
		{"extra one", []rule{{5000, a}, {5000, b}}, []rule{{5000, a}}, nil, true},
		{"extra port", []rule{{5000, a}, {22, a}}, []rule{{5000, a}}, nil, true},
		{"foreign rule", []rule{{5000, a}, {port: -1}}, []rule{{5000, a}}, nil, true},
		{"add and extra, sorted", []rule{{5000, b}}, []rule{{5000, c}, {22, a}, {5000, a}},
			[]rule{{22, a}, {5000, c}, {5000, a}}, true}, // by port, then CIDR string
		{"want nothing", []rule{{5000, a}}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, extra := ruleDiff(tt.have, tt.want)
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
		if isMutating("EC2." + c) {
			out = append(out, c)
		}
	}
	return out
}

func flatRules(calls [][]ec2types.IpPermission) []rule {
	var all []ec2types.IpPermission
	for _, c := range calls {
		all = append(all, c...)
	}
	return sortRules(ingressRules(all))
}

func TestEnsureSecurityGroup(t *testing.T) {
	t.Parallel()
	const a, b, c = "198.51.100.7/32", "203.0.113.0/24", "192.0.2.1/32"
	n := namesFor("demo", "123456789012", "eu-west-3")
	tests := []struct {
		name        string
		st          sgFound
		want        []rule
		wantRevoked []rule // flattened rules of the revoked permissions
		wantGranted []rule
		wantCalls   string
	}{
		{
			// EC2 groups CIDRs of one port into one permission: revoking B takes A with it.
			name: "shared permission: revoke B and 22, re-authorize A, authorize C",
			st: sgFound{vpcID: "vpc-1", id: "sg-1", perms: []ec2types.IpPermission{
				tcpPerm(5000, a, b), tcpPerm(22, a),
			}},
			want:        []rule{{5000, a}, {5000, c}},
			wantRevoked: []rule{{22, a}, {5000, a}, {5000, b}},
			wantGranted: []rule{{5000, a}, {5000, c}},
			wantCalls:   "[RevokeSecurityGroupIngress AuthorizeSecurityGroupIngress]",
		},
		{
			// A in its own permission object is kept and not re-authorized.
			name: "separate permissions: revoke B and 22, authorize exactly C",
			st: sgFound{vpcID: "vpc-1", id: "sg-1", perms: []ec2types.IpPermission{
				tcpPerm(5000, a), tcpPerm(5000, b), tcpPerm(22, a),
			}},
			want:        []rule{{5000, a}, {5000, c}},
			wantRevoked: []rule{{22, a}, {5000, b}},
			wantGranted: []rule{{5000, c}},
			wantCalls:   "[RevokeSecurityGroupIngress AuthorizeSecurityGroupIngress]",
		},
		{
			name:      "up to date: no mutating call",
			st:        sgFound{vpcID: "vpc-1", id: "sg-1", perms: []ec2types.IpPermission{tcpPerm(5000, a, c)}},
			want:      []rule{{5000, a}, {5000, c}},
			wantCalls: "[]",
		},
		{
			name:        "missing rule only: authorize, no revoke",
			st:          sgFound{vpcID: "vpc-1", id: "sg-1", perms: []ec2types.IpPermission{tcpPerm(5000, a)}},
			want:        []rule{{5000, a}, {5000, c}},
			wantGranted: []rule{{5000, c}},
			wantCalls:   "[AuthorizeSecurityGroupIngress]",
		},
		{
			name: "foreign IPv6 rule is revoked",
			st: sgFound{vpcID: "vpc-1", id: "sg-1", perms: []ec2types.IpPermission{tcpPerm(5000, a), {
				IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5000), ToPort: aws.Int32(5000),
				Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
			}}},
			want:        []rule{{5000, a}},
			wantRevoked: []rule{{port: -1}},
			wantCalls:   "[RevokeSecurityGroupIngress]",
		},
		{
			name:        "new group: create then authorize",
			st:          sgFound{vpcID: "vpc-1"},
			want:        []rule{{5000, a}},
			wantGranted: []rule{{5000, a}},
			wantCalls:   "[CreateSecurityGroup AuthorizeSecurityGroupIngress]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			st.rules = ingressRules(st.perms) // as findSecurityGroup fills it
			f := &fakeSG{}
			if err := ensureSecurityGroup(context.Background(), f, &st, n, tt.want, stackTags("demo", "eu-west-3", fakeOwner, time.Now(), 0), newProgress(io.Discard)); err != nil {
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
			if st.id == "" {
				t.Error("state has no group id afterwards")
			}
		})
	}
}

// An authorize racing another `up` may find the rule already there: not an error.
func TestEnsureSecurityGroupToleratesDuplicate(t *testing.T) {
	t.Parallel()
	f := &dupSG{}
	st := &sgFound{vpcID: "vpc-1", id: "sg-1"}
	n := namesFor("demo", "123456789012", "eu-west-3")
	if err := ensureSecurityGroup(context.Background(), f, st, n, []rule{{5000, "198.51.100.7/32"}}, nil, newProgress(io.Discard)); err != nil {
		t.Fatalf("InvalidPermission.Duplicate not tolerated: %v", err)
	}
}

type dupSG struct{ fakeSG }

func (f *dupSG) AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "InvalidPermission.Duplicate", Message: "the specified rule already exists"}
}

func TestFindSecurityGroupRefusesUntagged(t *testing.T) {
	t.Parallel()
	n := namesFor("demo", "123456789012", "eu-west-3")
	tests := []struct {
		name     string
		tags     []ec2types.Tag
		notOwned bool
	}{
		{"untagged", nil, true},
		{"other stack", []ec2types.Tag{{Key: aws.String(tagStack), Value: aws.String("other")}}, true},
		{"ours", []ec2types.Tag{{Key: aws.String(tagStack), Value: aws.String("demo")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSG{groups: []ec2types.SecurityGroup{{
				GroupId: aws.String("sg-1"), GroupName: aws.String(n.SecurityGroup), Tags: tt.tags,
				IpPermissions: []ec2types.IpPermission{tcpPerm(5000, "198.51.100.7/32")},
			}}}
			st, err := findSecurityGroup(context.Background(), f, n)
			var no *notOwnedError
			if got := errors.As(err, &no); got != tt.notOwned {
				t.Fatalf("findSecurityGroup error = %v, want notOwnedError: %v", err, tt.notOwned)
			}
			if !tt.notOwned && (st.id != "sg-1" || st.vpcID != "vpc-1" || len(st.rules) != 1) {
				t.Errorf("state = %+v", st)
			}
		})
	}
}

func dependencyViolation() error {
	return &smithy.GenericAPIError{Code: "DependencyViolation", Message: "resource sg-1 has a dependent object"}
}

// sgRows is the inventory's row of the stack's group sg-1.
func sgRows(n names) []resource {
	return []resource{{Kind: kindSG, ID: "sg-1", Name: n.SecurityGroup, State: stateExists}}
}

// While a terminated instance's interface lingers, deletion answers
// DependencyViolation; it must be retried (every 5 s), other errors must not.
func TestDeleteSecurityGroupsRetriesDependencyViolation(t *testing.T) {
	t.Parallel() // sleeps 2 × 5 s
	n := namesFor("demo", "123456789012", "eu-west-3")
	f := &fakeSG{
		groups:    []ec2types.SecurityGroup{{GroupId: aws.String("sg-1"), GroupName: aws.String(n.SecurityGroup)}},
		deleteErr: []error{dependencyViolation(), dependencyViolation()},
	}
	start := time.Now()
	if err := deleteSecurityGroups(context.Background(), f, sgRows(n), time.Minute, newProgress(io.Discard)); err != nil {
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
	n := namesFor("demo", "123456789012", "eu-west-3")
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
			err := deleteSecurityGroups(context.Background(), f, sgRows(n), tt.retryFor, newProgress(io.Discard))
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
	n := namesFor("demo", "123456789012", "eu-west-3")
	f := &fakeSG{
		groups:    []ec2types.SecurityGroup{{GroupId: aws.String("sg-1")}},
		deleteErr: []error{dependencyViolation(), dependencyViolation()},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := deleteSecurityGroups(ctx, f, sgRows(n), time.Minute, newProgress(io.Discard))
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
		rules []rule
		want  []string
	}{
		{nil, nil},
		{[]rule{{5000, "198.51.100.7/32"}}, []string{"letting 198.51.100.7/32 reach the tracking server (tcp 5000)"}},
		{[]rule{{5000, "198.51.100.7/32"}, {22, "198.51.100.7/32"}, {5000, "203.0.113.0/24"}}, []string{
			"letting 198.51.100.7/32, 203.0.113.0/24 reach the tracking server (tcp 5000)",
			"letting 198.51.100.7/32 reach SSH (tcp 22)",
		}},
		{[]rule{{8080, "0.0.0.0/0"}}, []string{"letting 0.0.0.0/0 reach tcp 8080"}},
	} {
		if got := openingLines(c.rules); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("openingLines(%v) = %q, want %q", c.rules, got, c.want)
		}
	}
}
