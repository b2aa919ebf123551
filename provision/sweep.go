package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mlstack/mlstack/provision/local"
)

// sweepParallel bounds concurrent stack deletions: enough to overlap the
// instance waits, few enough to stay clear of API throttling.
const sweepParallel = 4

// sweepMatch reports whether the sweep selectors of o choose the stack.
func (o *DownOptions) sweepMatch(i stackInfo, now time.Time) bool {
	if o.OlderThan > 0 && (i.CreatedAt.IsZero() || now.Sub(i.CreatedAt) < o.OlderThan) {
		return false
	}
	if o.Expired {
		return i.expired(now)
	}
	return o.All
}

// pickStacks is the stacks the sweep deletes: those the selectors match,
// whose IAM user or role is there to vouch for them, and (unless AnyOwner)
// that caller made. What it leaves alone it says.
func (o *DownOptions) pickStacks(stacks []stackInfo, caller string, now time.Time, log *progress) []stackInfo {
	var pick []stackInfo
	for _, st := range stacks {
		switch {
		case !o.sweepMatch(st, now):
		case st.Orphan:
			log.Info("leaving %s alone: only EC2 or S3 resources carry its tag, which anyone can set; "+
				"no IAM user or role of that stack vouches for them", st.Stack)
		case !o.AnyOwner && st.Owner != caller:
			log.Info("leaving stack %s alone: created by %s, not by you (%s); --any-owner includes it", st.Stack, describeOwner(st.Owner), caller)
		default:
			pick = append(pick, st)
		}
	}
	return pick
}

// sweep deletes every stack in the region that the selectors match,
// concurrently, and prints a summary line per stack on Out.
func sweep(ctx context.Context, o DownOptions) error {
	log := newProgress(o.Log)
	s, err := connect(ctx, o.AWS)
	if err != nil {
		return err
	}
	stacks, err := listStacks(ctx, s, []string{s.region})
	if err != nil {
		return err
	}
	pick := o.pickStacks(stacks, s.principal, time.Now(), log)
	switch {
	case len(pick) == 0:
		log.Step("no matching stacks in %s", s.region)
		return nil
	case o.DryRun:
		for _, st := range pick {
			fmt.Fprintf(o.Out, "(plan) would delete stack %s (%d resources, created %s by %s%s)\n", st.Stack, st.Resources,
				st.CreatedAt.Format(time.RFC3339), describeOwner(st.Owner), expiryNote(st))
		}
		return nil
	}
	if err := confirmSweep(o, pick, s.region, log); err != nil {
		return err
	}
	results := make([]error, len(pick))
	bounded(len(pick), sweepParallel, func(i int) {
		results[i] = sweepOne(ctx, s, o.StateDir, pick[i].Stack, o.Timeout, log.labelled(pick[i].Stack))
	})
	return sweepSummary(o.Out, pick, results)
}

// confirmSweep asks before deleting, unless --yes; with no terminal to ask
// on it refuses.
func confirmSweep(o DownOptions, pick []stackInfo, region string, log *progress) error {
	if o.Yes {
		return nil
	}
	if o.Confirm == nil {
		return usagef("refusing to delete %d stack(s) without --yes (no terminal to ask on)", len(pick))
	}
	for _, st := range pick {
		log.Info("stack %s (%d resources, created by %s)", st.Stack, st.Resources, describeOwner(st.Owner))
	}
	ok, err := o.Confirm(fmt.Sprintf("Delete these %d stack(s) in %s? [y/N] ", len(pick), region))
	if err != nil {
		return err
	}
	if !ok {
		return usagef("not confirmed: nothing deleted")
	}
	return nil
}

// sweepOne deletes one stack under its lock.
func sweepOne(ctx context.Context, s *session, stateDir, stack string, timeout time.Duration, log *progress) error {
	unlock, err := local.Lock(ctx, stateDir, stack, func() {
		log.Info("another mlstack run is working on stack %s; waiting for it", stack)
	})
	if err != nil {
		return asUsage(err)
	}
	defer unlock()
	dir := local.StackDir(stateDir, stack)
	n, err := resolveBucket(ctx, s.s3, namesFor(stack, s.account, s.region))
	if err != nil {
		return err
	}
	pending := ""
	if sec, err := dir.LoadFor(s.account, s.region); err == nil && sec != nil {
		pending = sec.PendingBucket
	}
	return deleteStack(ctx, s, n, dir, pending, timeout, log)
}

// sweepSummary prints one line per stack and joins the failures; anything
// left makes a LeftBehindError.
func sweepSummary(w io.Writer, pick []stackInfo, results []error) error {
	var errs []error
	var left []resource
	for i, st := range pick {
		var lb *LeftBehindError
		switch err := results[i]; {
		case err == nil:
			fmt.Fprintf(w, "deleted  %s\n", st.Stack)
		case errors.As(err, &lb):
			fmt.Fprintf(w, "LEFT     %s: %d resource(s) remain\n", st.Stack, len(lb.Remaining))
			left = append(left, lb.Remaining...)
			errs = append(errs, fmt.Errorf("stack %s: %w", st.Stack, err))
		default:
			fmt.Fprintf(w, "FAILED   %s: %v\n", st.Stack, err)
			errs = append(errs, fmt.Errorf("stack %s: %w", st.Stack, err))
		}
	}
	if len(left) > 0 {
		return &LeftBehindError{Sweep: true, Remaining: left, Err: errors.Join(errs...)}
	}
	return errors.Join(errs...)
}

func expiryNote(st stackInfo) string {
	if st.ExpiresAt.IsZero() {
		return ""
	}
	return ", expired " + st.ExpiresAt.Format(time.RFC3339)
}
