package provision

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/mlstack/mlstack/provision/server"
)

// statusProbeTimeout bounds status's one /health request.
const statusProbeTimeout = 5 * time.Second

// stackInventory is what a stack owns, read-only.
type stackInventory struct {
	rows       []cloud.Resource
	insts      []ec2types.Instance  // the stack's own live instances, oldest first
	lookalikes []cloud.Lookalike    // tagged instances that are not the stack's
	rules      []cloud.Rule         // the security group's ingress
	alone      []cloud.Resource     // same-named resources without the stack's tag: not the stack's
	iamTags    []map[string]string  // of the stack's IAM user and role
	mode       string               // the artifacts mode parameter's value
	db         *rdstypes.DBInstance // the stack's RDS database, nil for none
}

// inventory lists what the stack owns. Look-alikes (a derived name without
// the tag, a tagged instance without the stack's profile) are not listed:
// they are not the stack's.
func inventory(ctx context.Context, s *cloud.Session, n cloud.Names, pending string) (*stackInventory, error) {
	parts := make([]invPart, len(families))
	fns := make([]func() error, len(families))
	for i, f := range families {
		fns[i] = func() (err error) { parts[i], err = f.inventory(ctx, s, n, pending); return }
	}
	if err := cloud.Parallel(fns...); err != nil {
		return nil, err
	}
	var inv stackInventory
	for _, p := range parts {
		for _, r := range p.rows {
			if r.State == cloud.StateForeign {
				inv.alone = append(inv.alone, r)
			} else {
				inv.rows = append(inv.rows, r)
			}
		}
		if p.apply != nil {
			p.apply(&inv)
		}
	}
	return &inv, nil
}

// describe is the stack as status shows it: what it owns, what its IAM
// side says, its server and who may reach it. Health is not checked yet.
func (op *openedStack) describe(ctx context.Context) (*cloud.StackInfo, *stackInventory, error) {
	inv, err := inventory(ctx, op.s, op.n, op.pendingBucket())
	if err != nil {
		return nil, nil, err
	}
	info := &cloud.StackInfo{Stack: op.n.Stack, Account: op.s.Account, Region: op.s.Region, Resources: inv.rows, Health: cloud.HealthNoServer}
	cloud.SortResources(info.Resources)
	info.Orphan = len(inv.rows) > 0 && len(inv.iamTags) == 0
	for _, t := range inv.iamTags {
		info.Vouch(t)
	}
	if inst := op.server(inv); inst != nil {
		info.SetInstance(inst)
		// A stack made before TLS serves plain HTTP: probing https would
		// call a working server unreachable.
		if legacy, err := cloud.IsLegacy(ctx, op.s.EC2, inst); err == nil && legacy && info.TrackingURI != "" {
			info.TrackingURI = cloud.LegacyURI(inst)
		}
	}
	info.SetRules(inv.rules)
	if len(inv.rows) > 0 {
		info.Artifacts = modeOf(inv.mode)
		setDatabase(info, inv)
	}
	if err := readBackups(ctx, info, op.s.S3); err != nil {
		return nil, nil, err
	}
	if op.dir.HasEnvFile() {
		info.EnvFile = op.dir.EnvFile()
	}
	return info, inv, nil
}

// server is the stack's instance: the one this machine recorded, else the
// oldest; nil for none.
func (op *openedStack) server(inv *stackInventory) *ec2types.Instance {
	if len(inv.insts) == 0 {
		return nil
	}
	insts := inv.insts
	if op.secrets != nil {
		insts = recordedFirst(insts, op.secrets.InstanceID)
	}
	return &insts[0]
}

// serverTLS trusts the certificate the server published for inst in SSM
// (read with the caller's identity, so any machine can check); nil with
// why when there is none to trust yet.
func (op *openedStack) serverTLS(ctx context.Context, inst *ec2types.Instance) (cfg *tls.Config, why string) {
	keys, why, err := readServerKeys(ctx, op.s.SSM, op.n, inst, time.Time{}, time.Now())
	if err == nil && keys != nil {
		cfg, err = server.PinnedTLS(keys.certPEM)
	}
	if err != nil {
		return nil, err.Error()
	}
	return cfg, why
}

// checkHealth asks the server's /health once (healthURL overrides it),
// over https trusting only what pin gives: the certificate the server
// published, never the system's roots.
func checkHealth(ctx context.Context, info *cloud.StackInfo, healthURL string, pin func() (*tls.Config, string)) (detail string) {
	if info.TrackingURI == "" {
		info.Health = cloud.HealthNoServer
		return ""
	}
	url := cmp.Or(healthURL, info.TrackingURI+"/health")
	var cfg *tls.Config
	if strings.HasPrefix(url, "https://") {
		var why string
		if cfg, why = pin(); cfg == nil {
			info.Health = cloud.HealthUnreachable
			return "no certificate to trust: " + why
		}
	}
	status, err := server.Probe(ctx, url, cfg, statusProbeTimeout)
	switch {
	case err != nil:
		info.Health, detail = cloud.HealthUnreachable, err.Error()
	case status == http.StatusOK:
		info.Health = cloud.HealthOK
	default:
		info.Health, detail = cloud.HealthBad, fmt.Sprintf("answered %d", status)
	}
	return detail
}

// Status prints what the stack owns, its server, who may reach it, its
// expiry and cost. A stack that owns nothing is an error (exit 1).
func Status(ctx context.Context, o StatusOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	o.hooks = hooksOf(ctx, o.hooks)
	log := o.Streams.progress()
	op, err := openStack(ctx, o.Stack, o.AWS, log, false)
	if err != nil {
		return err
	}
	info, inv, err := op.describe(ctx)
	if err != nil {
		return err
	}
	for _, l := range inv.lookalikes {
		log.Warn("instance %s is tagged %s=%s, but %s: not the stack's", l.ID, cloud.TagStack, op.n.Stack, l.Why)
	}
	detail := checkHealth(ctx, info, o.hooks.HealthURL, func() (*tls.Config, string) { return op.serverTLS(ctx, op.server(inv)) })
	if o.Output == "json" {
		err = writeJSON(o.Out, info)
	} else if len(info.Resources) > 0 {
		err = statusTable(o.Out, info, detail, time.Now())
	}
	if err == nil && len(info.Resources) == 0 {
		h := hintsFor(o.Stack, o.AWS)
		err = fmt.Errorf("stack %s does not exist in account %s, %s: `%s` lists the stacks there", o.Stack.Name, info.Account, info.Region, h.cmd("ls"))
	}
	return err
}

// statusTable prints the stack for people.
func statusTable(w io.Writer, info *cloud.StackInfo, healthDetail string, now time.Time) error {
	fmt.Fprintf(w, "stack %s (account %s, %s)\n", info.Stack, info.Account, info.Region)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s:\t%s\n", k, v) }
	row("owner", ownerCell(*info))
	row("created", orDash(info.CreatedAt, ""))
	row("expires", expiresCell(*info, now))
	row("tracking URI", cmp.Or(info.TrackingURI, "none (no running instance)"))
	row("health", strings.TrimSpace(strings.ReplaceAll(info.Health, "_", " ")+" "+paren(healthDetail)))
	row("allowed CIDRs", cmp.Or(strings.Join(info.AllowedCIDRs, ", "), "none"))
	row("SSH", map[bool]string{true: "open to the allowed CIDRs", false: "closed"}[info.SSH])
	row("artifacts", artifactsCell(info.Artifacts))
	row("database", info.DatabaseDetail)
	row("backups", backupsCell(*info, now))
	row("cost", costCell(*info))
	row("env file", cmp.Or(info.EnvFile, "none on this machine"))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "resources:")
	for _, r := range info.Resources {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", kindLabels[r.Kind], r.Name, r.ID, r.State)
	}
	return tw.Flush()
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// expiresCell is the expiry with how long is left, or "never".
func expiresCell(info cloud.StackInfo, now time.Time) string {
	switch {
	case info.ExpiresAt.IsZero():
		return "never (no --ttl)"
	case info.Expired(now):
		return orDash(info.ExpiresAt, " (expired: `down --expired` removes it)")
	}
	return orDash(info.ExpiresAt, " (in "+info.ExpiresAt.Sub(now).Round(time.Minute).String()+")")
}

func costCell(info cloud.StackInfo) string {
	c, ok := info.CostPerMonth()
	switch {
	case !ok && info.DBClass != "":
		return "unknown (the instance type or RDS class " + info.DBClass + " is not in mlstack's price table)"
	case !ok:
		return "unknown for " + info.Instance.Type + " (not in mlstack's price table)"
	case info.DBClass != "":
		return fmt.Sprintf("about $%.2f a month (%s; RDS %s and %d GiB gp3 included)", c, cloud.CostSourceSummary, info.DBClass, cloud.DBStorageGiB)
	}
	return fmt.Sprintf("about $%.2f a month (%s)", c, cloud.CostSourceSummary)
}

// setDatabase says which engine keeps the stack's tracking data, and where.
func setDatabase(i *cloud.StackInfo, inv *stackInventory) {
	var snaps []string
	for _, r := range inv.rows {
		if r.Kind == cloud.KindDBSnapshot {
			snaps = append(snaps, r.Name)
		}
	}
	switch db := inv.db; {
	case db != nil:
		i.Database, i.DBClass, i.DBState = cloud.DBPostgres, aws.ToString(db.DBInstanceClass), aws.ToString(db.DBInstanceStatus)
		i.DatabaseDetail = fmt.Sprintf("PostgreSQL %s on RDS database %s (%s, %s)", aws.ToString(db.EngineVersion),
			aws.ToString(db.DBInstanceIdentifier), aws.ToString(db.DBInstanceClass), aws.ToString(db.DBInstanceStatus))
	case len(snaps) > 0:
		i.Database = cloud.DBPostgres
		i.DatabaseDetail = "PostgreSQL, kept as RDS snapshot " + snaps[0] + " (up restores it)"
	default:
		i.Database = cloud.DBSQLite
		i.DatabaseDetail = "sqlite on the instance, backed up to the bucket"
	}
}
