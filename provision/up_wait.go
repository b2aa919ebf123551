package provision

// up's end: wait for the server to answer, explain a stall, report.

import (
	"context"
	"fmt"
	"strings"

	"github.com/mlstack/mlstack/provision/internal/cloud"
	"github.com/mlstack/mlstack/provision/server"
)

// wait polls /health until the server answers; on a timeout it explains
// what the bootstrap log says.
func (r *upRun) wait(ctx context.Context) error {
	if r.o.NoWait {
		return nil
	}
	health := r.o.hooks.HealthURL
	if health == "" {
		health = r.uri + "/health"
	}
	if err := server.WaitHealthy(ctx, health, r.tls, r.o.Timeout, r.log, r.explainStall); err != nil {
		return r.target().explainUnhealthy(ctx, err, r.log)
	}
	return nil
}

// upHint is this up as a command to run again: the allowed CIDRs, SSH and
// an --artifacts given (a stack that failed before storing its mode would
// otherwise get direct).
func (r *upRun) upHint(extra ...string) string {
	if r.o.Artifacts != "" {
		extra = append([]string{"--artifacts", r.o.Artifacts}, extra...)
	}
	if r.o.Database != "" {
		extra = append([]string{"--db", r.o.Database}, extra...)
	}
	if r.o.DBClass != "" {
		extra = append([]string{"--db-class", r.o.DBClass}, extra...)
	}
	return r.h.up(r.o.AllowCIDRs, r.o.SSH, extra...)
}

// target is the instance as ssh and logs reach it, with hints that keep
// the allowed CIDRs and SSH as this up has them.
func (r *upRun) target() *target {
	t := newTarget(r.h, r.dir, r.s, r.inst, r.o.SSH)
	t.cidrs = r.o.AllowCIDRs
	return t
}

// explainStall says why the server does not answer yet and what to do.
func (r *upRun) explainStall(kind server.Stall) string {
	host := cloud.TrackingHost(r.inst)
	if kind == server.Refused {
		return fmt.Sprintf("%s:%d refuses connections: the instance is up but nothing listens on the port yet, "+
			"so the bootstrap is still installing MLflow (`%s` shows it). Still waiting", host, cloud.MlflowPort, r.h.cmd("logs"))
	}
	// The shell fills in the address: the command runs as printed.
	add := r.upHint() + ` --allow-cidr "$(curl -fsS https://checkip.amazonaws.com)/32"`
	msg := fmt.Sprintf("connections to %s:%d time out: packets are dropped before they reach the server. "+
		"The security group lets in only %s. If your traffic leaves from another address (a VPN, a corporate NAT), "+
		"add the address it leaves from: `%s`", host, cloud.MlflowPort, strings.Join(r.o.AllowCIDRs, ", "), add)
	if p := server.ProxyFor(r.uri); p != "" {
		msg += fmt.Sprintf(". These requests go through your HTTP proxy %s: allow the proxy's egress address, or set NO_PROXY=%s", p, host)
	}
	return msg + ". Still waiting"
}

// report prints the tracking URI, or with --output json the stack in the
// schema status and ls share, on stdout.
func (r *upRun) report(ctx context.Context) error {
	if r.o.Output == "json" {
		info, _, err := r.describe(ctx)
		if err != nil {
			return err
		}
		info.SetInstance(r.inst)
		info.TrackingURI = r.uri // plain HTTP on an earlier stack
		info.Health = cloud.HealthOK
		if r.o.NoWait {
			info.Health = cloud.HealthNotChecked
		}
		if err := writeJSON(r.o.Out, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(r.o.Out, r.uri)
	}
	env, what := r.h.cmd("env"), "the tracking URI, scoped credentials and %s's login"
	if r.mode == ArtifactsProxied {
		what = "the tracking URI and %s's login (no AWS key: artifacts go through the server)"
	}
	r.log.Step("ready: `%s >> .envrc` exports "+what+
		" (or put `eval \"$(%s)\"` in .envrc: the secrets then stay in %s)", env, r.store.Get().EnvUser, env, r.dir.Path())
	return nil
}
