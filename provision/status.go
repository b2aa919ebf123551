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

// inventory lists what the stack owns (tagged), read-only. Look-alikes
// without the tag are not listed: they are not the stack's.
// It also returns the live instances it found, oldest first.
func inventory(ctx context.Context, s *session, n names, pending string) ([]resource, []ec2types.Instance, error) {
	var (
		insts                []ec2types.Instance
		sgs, kps, iamR, bktR []resource
		userR                []resource
	)
	err := parallel(
		func() (err error) { insts, err = findInstances(ctx, s.ec2, n.Stack, liveStates); return },
		func() (err error) { sgs, err = sgInventory(ctx, s.ec2, n); return },
		func() (err error) { kps, err = keyPairInventory(ctx, s.ec2, n); return },
		func() (err error) {
			if userR, err = userInventory(ctx, s.iam, n); err == nil {
				iamR, err = roleInventory(ctx, s.iam, n)
			}
			return
		},
		func() (err error) { bktR, err = bucketInventory(ctx, s.s3, n, pending); return },
	)
	if err != nil {
		return nil, nil, err
	}
	out := instanceInventory(insts)
	for _, rows := range [][]resource{sgs, kps, userR, iamR, bktR} {
		out = append(out, rows...)
	}
	return out, insts, nil
}

// Status prints what the stack owns, its state and the tracking URI.
func Status(ctx context.Context, o StatusOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	s, err := connect(ctx, o.AWS)
	if err != nil {
		return err
	}
	n, err := resolveBucket(ctx, s.s3, namesFor(o.Stack.Name, s.account, s.region))
	if err != nil {
		return err
	}
	found, insts, err := inventory(ctx, s, n, "")
	if err != nil {
		return err
	}
	uri := ""
	if len(insts) > 0 {
		uri = trackingURI(&insts[0])
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
