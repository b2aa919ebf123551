package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
	"golang.org/x/sync/errgroup"
)

// sweepParallel bounds concurrent stack deletions: enough to overlap the
// instance waits, few enough to stay clear of API throttling.
const sweepParallel = 4

// sweepMatch reports whether the sweep selectors of o choose the stack.
func (o *DownOptions) sweepMatch(i cloud.StackInfo, now time.Time) bool {
	if o.OlderThan > 0 && (i.CreatedAt.IsZero() || now.Sub(i.CreatedAt) < o.OlderThan) {
		return false
	}
	if o.Expired {
		return i.Expired(now)
	}
	return o.All
}

// pickStacks is the stacks the sweep deletes: those the selectors match,
// whose IAM user or role is there to vouch for them, and (unless AnyOwner)
// that caller made. What it leaves alone it says.
func (o *DownOptions) pickStacks(stacks []cloud.StackInfo, caller string, now time.Time, log *progress) []cloud.StackInfo {
	var pick []cloud.StackInfo
	for _, st := range stacks {
		if why, skip := o.skipReason(st, caller, now); skip {
			if why != "" {
				log.Info("%s", why)
			}
			continue
		}
		pick = append(pick, st)
	}
	return pick
}

// skipReason reports whether the sweep leaves st alone, and why when that
// is worth saying ("" for a stack the selectors do not match).
func (o *DownOptions) skipReason(st cloud.StackInfo, caller string, now time.Time) (why string, skip bool) {
	switch {
	case !o.sweepMatch(st, now):
		return "", true
	case st.Orphan:
		return fmt.Sprintf("leaving %s alone: only EC2 or S3 resources carry its tag, which anyone can set; "+
			"no IAM user or role of that stack vouches for them", st.Stack), true
	case !o.AnyOwner && !cloud.SameOwner(st.Owner, caller):
		return fmt.Sprintf("leaving stack %s alone: created by %s, not by you (%s); --any-owner includes it",
			st.Stack, cloud.DescribeOwner(st.Owner), caller), true
	}
	return "", false
}

// recheck is why a picked stack is no longer to be deleted, from its own
// IAM user's and role's tags as inventory read them under the lock, or "".
// The listing is older: a `up --ttl` since then may have moved the expiry.
func (o *DownOptions) recheck(stack string, iamTags []map[string]string, caller string, now time.Time) string {
	st := cloud.StackInfo{Stack: stack, Orphan: true}
	for _, t := range iamTags {
		st.Vouch(t)
	}
	why, skip := o.skipReason(st, caller, now)
	switch {
	case !skip:
		return ""
	case why != "":
		return why
	case o.Expired && !st.Expired(now):
		return fmt.Sprintf("leaving stack %s alone: it no longer is expired (its IAM user and role now say it expires %s)",
			stack, orDash(st.ExpiresAt, ""))
	}
	return fmt.Sprintf("leaving stack %s alone: its IAM user and role no longer match the sweep", stack)
}

// skippedError is a picked stack the sweep left alone after reading it
// again: not a failure.
type skippedError struct{ why string }

func (e *skippedError) Error() string { return e.why }

// sweep deletes every stack in the region that the selectors match,
// concurrently, and prints a summary line per stack on Out.
func sweep(ctx context.Context, o DownOptions) error {
	log := o.Streams.progress()
	s, err := cloud.OpenSession(ctx, o.AWS)
	if err != nil {
		return err
	}
	stacks, err := listStacks(ctx, s, []string{s.Region})
	if err != nil {
		return err
	}
	pick := o.pickStacks(stacks, s.Principal, time.Now(), log)
	switch {
	case len(pick) == 0:
		log.Step("no matching stacks in %s", s.Region)
		return nil
	case o.DryRun:
		for _, st := range pick {
			fmt.Fprintf(o.Out, "(plan) would delete stack %s (%s, created %s by %s%s)\n", st.Stack, cloud.Plural(len(st.Resources), "resource"),
				st.CreatedAt.Format(time.RFC3339), cloud.DescribeOwner(st.Owner), expiryNote(st))
		}
		return nil
	}
	if err := confirmSweep(o, pick, s.Region, log); err != nil {
		return err
	}
	// Each stack's result is kept (the summary names every failure), so
	// the group's own first-error answer is always nil.
	results := make([]error, len(pick))
	var g errgroup.Group
	g.SetLimit(sweepParallel)
	for i := range pick {
		g.Go(func() error {
			results[i] = sweepOne(ctx, s, o, pick[i].Stack, log.labelled(pick[i].Stack))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	err = sweepSummary(o.Out, pick, results)
	var left *LeftBehindError
	if errors.As(err, &left) {
		left.Hint = o.sweepHint()
	}
	return err
}

// sweepHint is this sweep as a command, to run again.
func (o *DownOptions) sweepHint() string {
	var args []string
	if o.Expired {
		args = append(args, "--expired")
	}
	if o.All {
		args = append(args, "--all")
	}
	if o.OlderThan > 0 {
		args = append(args, "--older-than", cloud.FormatDuration(o.OlderThan))
	}
	if o.AnyOwner {
		args = append(args, "--any-owner")
	}
	return hintsFor(Stack{StateDir: o.StateDir}, o.AWS).cmd("down", append(args, "--yes")...)
}

// confirmSweep asks before deleting, unless --yes; with no terminal to ask
// on it refuses.
func confirmSweep(o DownOptions, pick []cloud.StackInfo, region string, log *progress) error {
	if o.Yes {
		return nil
	}
	if o.Confirm == nil {
		return cloud.Usagef("refusing to delete %s without --yes (no terminal to ask on)", cloud.Plural(len(pick), "stack"))
	}
	for _, st := range pick {
		log.Info("stack %s (%s, created by %s)", st.Stack, cloud.Plural(len(st.Resources), "resource"), cloud.DescribeOwner(st.Owner))
	}
	question := fmt.Sprintf("Delete these %d stacks in %s?", len(pick), region)
	if len(pick) == 1 {
		question = fmt.Sprintf("Delete stack %s in %s?", pick[0].Stack, region)
	}
	ok, err := o.Confirm(question + " [y/N] ")
	if err != nil {
		return err
	}
	if !ok {
		return cloud.Usagef("not confirmed: nothing deleted")
	}
	return nil
}

// sweepOne deletes one stack under its lock.
func sweepOne(ctx context.Context, s *cloud.Session, o DownOptions, stack string, log *progress) error {
	stateDir := o.StateDir
	unlock, err := local.Lock(ctx, stateDir, stack, func() {
		log.Info("another mlstack run is working on stack %s; waiting for it", stack)
	})
	if err != nil {
		return cloud.AsUsage(err)
	}
	defer unlock()
	dir := local.StackDir(stateDir, stack)
	n, err := cloud.ResolveBucket(ctx, s.S3, cloud.NamesFor(stack, s.Account, s.Region))
	if err != nil {
		return err
	}
	pending := ""
	if sec, err := dir.LoadFor(s.Account, s.Region); err == nil && sec != nil {
		pending = sec.PendingBucket
	}
	// Read right before deleting: the listing that picked the stack is older.
	inv, err := inventory(ctx, s, n, pending)
	if err != nil {
		return err
	}
	if why := o.recheck(stack, inv.iamTags, s.Principal, time.Now()); why != "" {
		log.Info("%s", why)
		return &skippedError{why: why}
	}
	err = deleteStack(ctx, s, n, dir, deletion{pending: pending, timeout: o.Timeout}, inv, log)
	var left *LeftBehindError
	if errors.As(err, &left) {
		left.Hint = hintsFor(Stack{Name: stack, StateDir: stateDir}, o.AWS).cmd("down", "--yes")
	}
	return err
}

// sweepSummary prints one line per stack and joins the failures; anything
// left makes a LeftBehindError.
func sweepSummary(w io.Writer, pick []cloud.StackInfo, results []error) error {
	var errs []error
	var left []cloud.Resource
	for i, st := range pick {
		var lb *LeftBehindError
		var sk *skippedError
		switch err := results[i]; {
		case err == nil:
			fmt.Fprintf(w, "deleted  %s\n", st.Stack)
		case errors.As(err, &sk):
			fmt.Fprintf(w, "SKIPPED  %s: %s\n", st.Stack, sk.why)
		case errors.As(err, &lb):
			fmt.Fprintf(w, "LEFT     %s: still owns %s\n", st.Stack, cloud.Plural(len(lb.Remaining), "resource"))
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

func expiryNote(st cloud.StackInfo) string {
	if st.ExpiresAt.IsZero() {
		return ""
	}
	return ", expired " + st.ExpiresAt.Format(time.RFC3339)
}
