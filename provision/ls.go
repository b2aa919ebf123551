package provision

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// listStacks finds every stack in the given regions from cheap, tag-based
// discovery: EC2 tag filters, IAM path /mlstack/, and bucket names with the
// mlstack prefix. Nothing untagged is listed, and nothing is changed.
func listStacks(ctx context.Context, s *cloud.Session, regions []string) ([]cloud.StackInfo, error) {
	set := cloud.NewStackSet(s.Account)
	want := map[string]bool{}
	for _, r := range regions {
		want[r] = true
	}
	var fns []func() error
	for _, f := range families {
		if f.listAll != nil {
			fns = append(fns, func() error { return f.listAll(ctx, s, want, set) })
		}
	}
	for _, r := range regions {
		fns = append(fns, func() error {
			for _, f := range families {
				if f.listIn == nil {
					continue
				}
				if err := f.listIn(ctx, s, r, set); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := cloud.Parallel(fns...); err != nil {
		return nil, err
	}
	return set.Sorted(), nil
}

// allRegions lists the regions enabled for the account.
func allRegions(ctx context.Context, api cloud.RegionAPI) ([]string, error) {
	out, err := api.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, fmt.Errorf("listing regions: %w", err)
	}
	var regions []string
	for _, r := range out.Regions {
		regions = append(regions, aws.ToString(r.RegionName))
	}
	sort.Strings(regions)
	return regions, nil
}

// Ls prints every stack in the region (or all regions) as a table or JSON.
func Ls(ctx context.Context, o LsOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	s, err := cloud.OpenSession(ctx, o.AWS)
	if err != nil {
		return err
	}
	regions := []string{s.Region}
	if o.AllRegions {
		if regions, err = allRegions(ctx, s.EC2); err != nil {
			return err
		}
	}
	stacks, err := listStacks(ctx, s, regions)
	if err != nil {
		return err
	}
	if len(stacks) == 0 {
		// On stderr: stdout stays a table (or JSON list) a script can read.
		o.Streams.progress().Info("no stacks in %s", strings.Join(regions, ", "))
	}
	if o.Output == "json" {
		return writeJSON(o.Out, stacks)
	}
	if len(stacks) == 0 {
		return nil
	}
	return lsTable(o.Out, stacks, time.Now())
}

// lsTable prints one line per stack.
func lsTable(w io.Writer, stacks []cloud.StackInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STACK\tREGION\tOWNER\tCREATED\tEXPIRES\tINSTANCE\tTRACKING URI")
	for _, st := range stacks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Stack, st.Region, ownerCell(st), orDash(st.CreatedAt, ""), expiry(st, now),
			st.InstanceState(), orDashS(st.TrackingURI))
	}
	return tw.Flush()
}

func expiry(st cloud.StackInfo, now time.Time) string {
	if st.Expired(now) {
		return orDash(st.ExpiresAt, " (expired)")
	}
	return orDash(st.ExpiresAt, "")
}

func orDash(t time.Time, note string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339) + note
}

// ownerCell is who made the stack; an orphan (resources with its tag but
// neither its IAM user nor role) has no one to vouch for it.
func ownerCell(st cloud.StackInfo) string {
	if st.Orphan {
		return "(orphan)"
	}
	return orDashS(st.Owner)
}

func orDashS(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
