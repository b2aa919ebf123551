package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
)

// LeftBehindError means down finished but the stack still owns resources
// (exit code 3): running down again should finish the job.
type LeftBehindError struct {
	Stack     string
	Sweep     bool // left by a sweep of several stacks
	Remaining []cloud.Resource
	Err       error
	// Hint is the command that finishes the job, with the flags in use.
	Hint string
}

func (e *LeftBehindError) Error() string {
	var names []string
	for _, r := range e.Remaining {
		names = append(names, label(r))
	}
	msg := fmt.Sprintf("stack %s still owns: %s; run `%s` again", e.Stack, strings.Join(names, ", "), e.Hint)
	if e.Sweep {
		msg = fmt.Sprintf("the sweep left: %s; run `%s` again", strings.Join(names, ", "), e.Hint)
	}
	if e.Err != nil {
		msg = e.Err.Error() + "\n" + msg
	}
	return msg
}

func (e *LeftBehindError) Unwrap() error { return e.Err }

// Down deletes everything the stack owns, in dependency order, discovering
// it by tag and derived name so it works without local state. With Expired
// or All it sweeps the region instead (see sweep).
func Down(ctx context.Context, o DownOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	o.hooks = hooksOf(ctx, o.hooks)
	if o.sweep() {
		return sweep(ctx, o)
	}
	log := o.Streams.progress()
	op, err := openStack(ctx, o.Stack, o.AWS, log, !o.DryRun)
	if err != nil {
		return err
	}
	defer op.release()
	inv, err := inventory(ctx, op.s, op.n, op.pendingBucket())
	if err != nil {
		return err
	}
	cloud.SortResources(inv.rows)
	d := deletion{pending: op.pendingBucket(), timeout: o.Timeout, keepData: o.KeepData}
	if o.KeepData {
		inv.rows, d.keep = withoutKept(inv.rows)
	}
	switch {
	case len(inv.rows) == 0 && d.keep != "":
		log.Step("stack %s owns nothing but its kept bucket %s: `%s` makes the stack again from it, `%s` deletes it",
			op.n.Stack, d.keep, hintsFor(o.Stack, o.AWS).cmd("up"), hintsFor(o.Stack, o.AWS).cmd("down", "--yes"))
		if o.DryRun {
			return nil
		}
		return op.dir.Remove()
	case len(inv.rows) == 0:
		log.Step("stack %s owns nothing in account %s, %s", op.n.Stack, op.s.Account, op.s.Region)
		if o.DryRun {
			return nil
		}
		return op.dir.Remove()
	case o.DryRun:
		printDownPlan(o.Out, inv.rows, inv.lookalikes, op.fateOfData(ctx, inv, o.hooks.TrackingURI, d.keep))
		return nil
	}
	if err := confirmDown(ctx, o, op, inv, d.keep, log); err != nil {
		return err
	}
	if !o.Yes { // a person took their time to answer: act on what exists now
		if inv, err = inventory(ctx, op.s, op.n, d.pending); err != nil {
			return err
		}
		if o.KeepData {
			inv.rows, _ = withoutKept(inv.rows)
		}
	}
	err = deleteStack(ctx, op.s, op.n, op.dir, d, inv, log)
	if err == nil && d.keep != "" {
		op.keptBucket(ctx, o, d.keep, log)
	}
	var left *LeftBehindError
	if errors.As(err, &left) {
		left.Hint = hintsFor(o.Stack, o.AWS).cmd("down", "--yes")
	}
	return err
}

// printDownPlan is down --dry-run's answer.
func printDownPlan(w io.Writer, found []cloud.Resource, lookalikes []cloud.Lookalike, fate dataFate) {
	for _, r := range found {
		fmt.Fprintf(w, "(plan) would delete %s\n", label(r))
	}
	for _, k := range fate.kept {
		fmt.Fprintf(w, "(plan) would keep %s\n", k)
	}
	for _, l := range fate.lost {
		fmt.Fprintf(w, "(plan) would lose for good: %s\n", l)
	}
	for _, l := range lookalikes {
		fmt.Fprintf(w, "(plan) would leave instance %s alone: %s\n", l.ID, l.Why)
	}
}

// confirmDown asks before deleting, unless --yes, after saying what is lost
// for good; with no terminal to ask on it refuses. A stack another
// principal made is named as theirs.
func confirmDown(ctx context.Context, o DownOptions, op *openedStack, inv *stackInventory, keep string, log *progress) error {
	owner := op.home.ForeignOwner(op.s.Principal)
	switch {
	case o.Yes && owner != "":
		log.Warn("stack %s was created by %s, not by you (%s): deleting it as --yes says", op.n.Stack, owner, op.s.Principal)
		return nil
	case o.Yes:
		return nil
	case o.Confirm == nil && owner != "":
		return cloud.Usagef("stack %s was created by %s, not by you (%s): refusing to delete it without --yes (no terminal to ask on)",
			op.n.Stack, owner, op.s.Principal)
	case o.Confirm == nil:
		return cloud.Usagef("refusing to delete stack %s without --yes (no terminal to ask on)", op.n.Stack)
	}
	log.Step("stack %s owns:", op.n.Stack)
	for _, r := range inv.rows {
		log.Info("%s", label(r))
	}
	fate := op.fateOfData(ctx, inv, o.hooks.TrackingURI, keep)
	for _, k := range fate.kept {
		log.Step("kept: %s", k)
	}
	for _, l := range fate.lost {
		log.Warn("lost for good: %s", l)
	}
	whose := ""
	if owner != "" {
		whose = " (created by " + owner + ", not by you)"
	}
	if keep != "" {
		whose += " (keeping bucket " + keep + ")"
	}
	ok, err := o.Confirm(fmt.Sprintf("Delete stack %s%s, %s above, in %s? [y/N] ", op.n.Stack, whose, cloud.Plural(len(inv.rows), "resource"), op.s.Region))
	if err != nil {
		return err
	}
	if !ok {
		return cloud.Usagef("not confirmed: nothing deleted")
	}
	return nil
}

// deleteStack removes one stack's resources in dependency order, as inv
// (read just before) found them, then its local state once nothing
// remains. Every step runs even when an earlier one failed; errors are
// joined. Only then is the stack read again, to say what is left
// (LeftBehindError): a step that succeeded left nothing behind.
func deleteStack(ctx context.Context, s *cloud.Session, n cloud.Names, dir local.Dir, d deletion, inv *stackInventory, log *progress) error {
	if d.keep != "" {
		if err := stopStackInstances(ctx, s, n, d.timeout, log); err != nil {
			return fmt.Errorf("%w; nothing deleted yet (the bucket is kept only after a clean stop)", err)
		}
	}
	for _, r := range inv.alone {
		log.Warn("leaving %s alone: it is not tagged %s=%s", label(r), cloud.TagStack, n.Stack)
	}
	errs := deleteOwned(ctx, s, n, d, inv, log)
	if ctx.Err() != nil {
		return errors.Join(append(errs, ctx.Err())...)
	}
	if joined := errors.Join(errs...); joined != nil {
		left, err := inventory(ctx, s, n, d.pending)
		if left != nil && d.keepData {
			left.rows, _ = withoutKept(left.rows)
		}
		if left != nil && len(left.rows) > 0 {
			return &LeftBehindError{Stack: n.Stack, Remaining: left.rows, Err: errors.Join(joined, err)}
		}
		return errors.Join(joined, err)
	}
	// What bills by the hour is listed once more: an instance EC2 did not
	// list yet when the stack was read (one launched just before, e.g. by an
	// interrupted up) would run on unseen.
	if late, err := lateInstances(ctx, s, n, inv); err != nil || len(late) > 0 {
		return &LeftBehindError{Stack: n.Stack, Remaining: late, Err: err}
	}
	// Local secrets go last: while anything remains they may still be needed.
	if err := dir.Remove(); err != nil {
		return err
	}
	if d.keep != "" {
		log.Step("stack %s is gone but for its bucket", n.Stack)
	} else {
		log.Step("stack %s is gone", n.Stack)
	}
	return nil
}

// deleteOwned runs deleteOrder over what inv found and returns the errors.
func deleteOwned(ctx context.Context, s *cloud.Session, n cloud.Names, d deletion, inv *stackInventory, log *progress) []error {
	var errs []error
	for _, stage := range deleteOrder {
		var fns []func() error
		for _, st := range stage {
			if slices.ContainsFunc(inv.rows, func(r cloud.Resource) bool { return st.owns(n, r) }) {
				fns = append(fns, func() error { return st.run(ctx, s, n, d, inv, log) })
			}
		}
		errs = append(errs, cloud.Parallel(fns...))
	}
	return errs
}

// of is the inventory's rows of one kind.
func (inv *stackInventory) of(kind string) []cloud.Resource {
	var out []cloud.Resource
	for _, r := range inv.rows {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// lateInstances lists the stack's tagged live instances that its
// inventory did not know (look-alikes stay left alone).
func lateInstances(ctx context.Context, s *cloud.Session, n cloud.Names, inv *stackInventory) ([]cloud.Resource, error) {
	insts, err := cloud.FindInstances(ctx, s.EC2, n.Stack, cloud.LiveStates)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, l := range inv.lookalikes {
		known[l.ID] = true
	}
	var late []ec2types.Instance
	for _, i := range insts {
		if !known[aws.ToString(i.InstanceId)] && cloud.StateOf(&i) != ec2types.InstanceStateNameTerminated {
			late = append(late, i)
		}
	}
	return cloud.InstanceInventory(late), nil
}

// terminateStackInstances ends the stack's own instances (as inv found
// them) and waits until they are gone; tagged look-alikes are left alone,
// with a warning.
func terminateStackInstances(ctx context.Context, s *cloud.Session, n cloud.Names, inv *stackInventory, timeout time.Duration, log *progress) error {
	insts, others := inv.insts, inv.lookalikes
	for _, l := range others {
		log.Warn("leaving instance %s alone: it is tagged %s=%s, but %s", l.ID, cloud.TagStack, n.Stack, l.Why)
	}
	var ids []string
	for _, i := range insts {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	if len(ids) == 0 {
		return nil
	}
	log.Step("terminating %s %s", cloud.PluralWord(len(ids), "instance"), strings.Join(ids, ", "))
	return cloud.Terminate(ctx, s.EC2, ids, timeout, log)
}
