package provision

// Hints: the mlstack commands a run prints for the user to run next. Each
// carries the flags in use (--stack, --state-dir, --region, --profile), so
// that it runs as printed and acts on the same stack in the same place.

import (
	"strings"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

// hints builds commands for one run's stack and AWS flags.
type hints struct {
	stack    string // "" for commands on no one stack (ls, sweeps)
	stateDir string
	region   string // as given with --region; "" when the AWS chain chose it
	profile  string
}

func hintsFor(st Stack, a cloud.AWS) hints {
	return hints{stack: st.Name, stateDir: st.StateDir, region: a.Region, profile: a.Profile}
}

// localVerbs read only local files: they take no --region or --profile.
var localVerbs = map[string]bool{"env": true, "check": true, "ui": true}

// cmd is `mlstack VERB` with the run's flags, then extra, shell-quoted.
func (h hints) cmd(verb string, extra ...string) string {
	args := append([]string{"mlstack"}, strings.Fields(verb)...)
	if h.stack != "" && verb != "ls" {
		args = append(args, "--stack", h.stack)
	}
	if !localVerbs[verb] {
		if h.region != "" {
			args = append(args, "--region", h.region)
		}
		if h.profile != "" {
			args = append(args, "--profile", h.profile)
		}
	}
	if h.stateDir != "" && h.stateDir != DefaultStateDir() && verb != "ls" {
		args = append(args, "--state-dir", h.stateDir)
	}
	return ShellLine(append(args, extra...))
}

// aws is an `aws` CLI command on the run's profile in region (the resolved
// one: the AWS CLI may default to another), for steps mlstack does not do.
func (h hints) aws(region string, args ...string) string {
	args = append([]string{"aws"}, args...)
	if region != "" {
		args = append(args, "--region", region)
	}
	if h.profile != "" {
		args = append(args, "--profile", h.profile)
	}
	return ShellLine(args)
}

// up is an `mlstack up` that keeps the stack as it is: up is declarative, so
// without the allowed CIDRs it would narrow the security group to the
// detected IP, and without --ssh close port 22. CIDRs that were opened
// once need no question again.
func (h hints) up(cidrs []string, ssh bool, extra ...string) string {
	var args []string
	for _, c := range cidrs {
		args = append(args, "--allow-cidr", c)
	}
	if ssh {
		args = append(args, "--ssh")
	}
	if cloud.WideOpening(cidrs) != "" {
		args = append(args, "--yes")
	}
	return h.cmd("up", append(args, extra...)...)
}

// localUp is the up hint of a command that reads only local files: the
// region and the allowed CIDRs come from the stack's local state.
func localUp(st Stack, sec *local.Secrets) string {
	if sec == nil {
		return hints{stack: st.Name, stateDir: st.StateDir}.cmd("up")
	}
	return hints{stack: st.Name, stateDir: st.StateDir, region: sec.Region}.up(sec.AllowCIDRs, sec.SSH)
}

// Hint is an mlstack command on the stack st with the AWS flags of a, for
// the command line's own messages (the interrupt hint).
func Hint(st Stack, a cloud.AWS, verb string, extra ...string) string {
	return hintsFor(st, a).cmd(verb, extra...)
}

// ShellLine joins args into one line a POSIX shell reads back as args.
func ShellLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = cloud.ShellWord(a)
	}
	return strings.Join(out, " ")
}
