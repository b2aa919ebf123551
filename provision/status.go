package provision

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// statusReport is `status --output json`.
type statusReport struct {
	Stack       string     `json:"stack"`
	Account     string     `json:"account"`
	Region      string     `json:"region"`
	Resources   []resource `json:"resources"`
	TrackingURI string     `json:"tracking_uri,omitempty"`
}

// stackInventory is what a stack owns, read-only.
type stackInventory struct {
	rows       []resource
	insts      []ec2types.Instance // the stack's own live instances, oldest first
	lookalikes []lookalike         // tagged instances that are not the stack's
}

// inventory lists what the stack owns. Look-alikes (a derived name without
// the tag, a tagged instance without the stack's profile) are not listed:
// they are not the stack's.
func inventory(ctx context.Context, s *session, n names, pending string) (*stackInventory, error) {
	var (
		inv                  stackInventory
		sgs, kps, iamR, bktR []resource
		userR, prmR          []resource
	)
	err := parallel(
		func() (err error) { inv.insts, inv.lookalikes, err = stackInstances(ctx, s.ec2, n, liveStates); return },
		func() (err error) { sgs, err = sgInventory(ctx, s.ec2, n); return },
		func() (err error) { kps, err = keyPairInventory(ctx, s.ec2, n); return },
		func() (err error) {
			if userR, err = userInventory(ctx, s.iam, n); err == nil {
				iamR, err = roleInventory(ctx, s.iam, n)
			}
			return
		},
		func() (err error) { bktR, err = bucketInventory(ctx, s.s3, n, pending); return },
		func() (err error) { prmR, err = paramInventory(ctx, s.ssm, n); return },
	)
	if err != nil {
		return nil, err
	}
	inv.rows = instanceInventory(inv.insts)
	for _, rows := range [][]resource{sgs, kps, userR, iamR, bktR, prmR} {
		inv.rows = append(inv.rows, rows...)
	}
	return &inv, nil
}

// Status prints what the stack owns, its state and the tracking URI.
func Status(ctx context.Context, o StatusOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	log := newProgress(o.Log)
	op, err := openStack(ctx, o.Stack, o.AWS, log, false)
	if err != nil {
		return err
	}
	s := op.s
	inv, err := inventory(ctx, s, op.n, op.pendingBucket())
	if err != nil {
		return err
	}
	for _, l := range inv.lookalikes {
		log.Warn("instance %s is tagged %s=%s, but %s: not the stack's", l.id, tagStack, op.n.Stack, l.why)
	}
	found, uri := inv.rows, ""
	if len(inv.insts) > 0 {
		uri = trackingURI(&inv.insts[0])
	}
	if o.Output == "json" {
		return writeJSON(o.Out, statusReport{Stack: o.Stack.Name, Account: s.account, Region: s.region, Resources: found, TrackingURI: uri})
	}
	statusTable(o.Out, o.Stack.Name, s, found, uri)
	return nil
}

func statusTable(w io.Writer, stack string, s *session, found []resource, uri string) {
	fmt.Fprintf(w, "stack %s (account %s, %s)\n", stack, s.account, s.region)
	if len(found) == 0 {
		fmt.Fprintln(w, "  nothing exists")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, r := range found {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Kind, r.Name, r.State)
	}
	tw.Flush()
	if uri != "" {
		fmt.Fprintf(w, "tracking URI: %s\n", uri)
	} else {
		fmt.Fprintln(w, "tracking URI: none (no running instance)")
	}
}
