package main

import (
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ingress lists a security group's ingress as "proto port cidr", sorted.
func ingress(t *testing.T, e *env, group string) []string {
	t.Helper()
	var out []string
	for _, p := range stackSGNamed(t, e, group).IpPermissions {
		for _, r := range p.IpRanges {
			out = append(out, fmt.Sprintf("%s %d-%d %s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), aws.ToString(r.CidrIp)))
		}
		if len(p.Ipv6Ranges)+len(p.UserIdGroupPairs)+len(p.PrefixListIds) > 0 {
			out = append(out, fmt.Sprintf("other %+v", p))
		}
	}
	sort.Strings(out)
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSSHPortFollowsFlag: SSH is off by default; `up --ssh` opens tcp 22 to
// the allowed CIDRs only; a later `up` without --ssh closes it again.
func TestSSHPortFollowsFlag(t *testing.T) {
	e := newEnv(t)
	const name = "sshport"
	const other = "203.0.113.0/24"
	up := func(extra ...string) {
		t.Helper()
		args := append([]string{"up"}, e.stackFlags(name)...)
		args = append(args, "--allow-cidr", allowCIDR, "--allow-cidr", other, "--no-wait")
		res := e.mlstack(append(args, extra...)...)
		if res.code != 0 {
			t.Fatalf("up %v: exit %d: %s", extra, res.code, res.stderr)
		}
	}
	web := []string{"tcp 5000-5000 " + allowCIDR, "tcp 5000-5000 " + other}
	withSSH := []string{"tcp 22-22 " + allowCIDR, "tcp 22-22 " + other, "tcp 5000-5000 " + allowCIDR, "tcp 5000-5000 " + other}

	up()
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, web) {
		t.Fatalf("default up: ingress %v, want %v (no port 22)", got, web)
	}
	up("--ssh")
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, withSSH) {
		t.Fatalf("up --ssh: ingress %v, want %v", got, withSSH)
	}
	// Converged: a second `up --ssh` changes nothing.
	e.rec.reset()
	up("--ssh")
	if m := e.rec.mutating(); len(m) > 0 {
		t.Errorf("second up --ssh made mutating calls: %+v", m)
	}
	up()
	if got := ingress(t, e, "mlstack-"+name); !sameStrings(got, web) {
		t.Fatalf("up without --ssh after --ssh: ingress %v, want %v (port 22 closed again)", got, web)
	}

	res := e.mlstack(append([]string{"down", "--yes"}, e.stackFlags(name)...)...)
	if res.code != 0 {
		t.Fatalf("down: exit %d: %s", res.code, res.stderr)
	}
	e.assertNothingLeft()
}
