package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/mlstack/mlstack/provision/local"
)

// LeftBehindError means down finished but the stack still owns resources
// (exit code 3): running down again should finish the job.
type LeftBehindError struct {
	Stack     string
	Sweep     bool // left by a sweep of several stacks
	Remaining []resource
	Err       error
}

func (e *LeftBehindError) Error() string {
	var names []string
	for _, r := range e.Remaining {
		names = append(names, r.Kind+" "+r.Name)
	}
	msg := fmt.Sprintf("stack %s still owns: %s; run `mlstack down --stack %s --yes` again", e.Stack, strings.Join(names, ", "), e.Stack)
	if e.Sweep {
		msg = fmt.Sprintf("the sweep left: %s; run it again", strings.Join(names, ", "))
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
	if o.sweep() {
		return sweep(ctx, o)
	}
	log := newProgress(o.Log)
	op, err := openStack(ctx, o.Stack, o.AWS, log, !o.DryRun)
	if err != nil {
		return err
	}
	defer op.release()
	inv, err := inventory(ctx, op.s, op.n, op.pendingBucket())
	if err != nil {
		return err
	}
	found := inv.rows
	if len(found) == 0 {
		log.Step("stack %s owns nothing in account %s, %s", op.n.Stack, op.s.account, op.s.region)
		if o.DryRun {
			return nil
		}
		return op.dir.Remove()
	}
	if o.DryRun {
		for _, r := range found {
			fmt.Fprintf(o.Out, "(plan) would delete %s %s\n", r.Kind, r.Name)
		}
		for _, l := range inv.lookalikes {
			fmt.Fprintf(o.Out, "(plan) would leave instance %s alone: %s\n", l.id, l.why)
		}
		return nil
	}
	if err := confirmDown(o, op, found, log); err != nil {
		return err
	}
	return deleteStack(ctx, op.s, op.n, op.dir, op.pendingBucket(), o.Timeout, log)
}

// confirmDown asks before deleting, unless --yes; with no terminal to ask
// on it refuses. A stack another principal made is named as theirs.
func confirmDown(o DownOptions, op *openedStack, found []resource, log *progress) error {
	owner := op.home.foreignOwner(op.s.principal)
	switch {
	case o.Yes && owner != "":
		log.Warn("stack %s was created by %s, not by you (%s): deleting it as --yes says", op.n.Stack, owner, op.s.principal)
		return nil
	case o.Yes:
		return nil
	case o.Confirm == nil && owner != "":
		return usagef("stack %s was created by %s, not by you (%s): refusing to delete it without --yes (no terminal to ask on)",
			op.n.Stack, owner, op.s.principal)
	case o.Confirm == nil:
		return usagef("refusing to delete stack %s without --yes (no terminal to ask on)", op.n.Stack)
	}
	for _, r := range found {
		log.Info("%s %s", r.Kind, r.Name)
	}
	whose := ""
	if owner != "" {
		whose = " (created by " + owner + ", not by you)"
	}
	ok, err := o.Confirm(fmt.Sprintf("Delete stack %s%s, %d resources above, in %s? [y/N] ", op.n.Stack, whose, len(found), op.s.region))
	if err != nil {
		return err
	}
	if !ok {
		return usagef("not confirmed: nothing deleted")
	}
	return nil
}

// deleteStack removes one stack's resources in dependency order, then its
// local state once nothing remains. Every step runs even when an earlier one
// failed; errors are joined, and leftovers make a LeftBehindError.
func deleteStack(ctx context.Context, s *session, n names, dir local.Dir, pending string, timeout time.Duration, log *progress) error {
	errs := []error{
		terminateStackInstances(ctx, s, n, timeout, log),
		// The group cannot go while an interface of the instance is attached.
		deleteSecurityGroups(ctx, s.ec2, n, 3*time.Minute, log),
		deleteKeyPair(ctx, s.ec2, n, log),
		deleteRole(ctx, s.iam, n, log),
		deleteParams(ctx, s.ssm, n, log),
		deleteBucket(ctx, s.s3, n, pending, log),
		deleteUser(ctx, s.iam, n, log),
	}
	if ctx.Err() != nil {
		return errors.Join(append(errs, ctx.Err())...)
	}
	inv, err := inventory(ctx, s, n, pending)
	joined := errors.Join(append(errs, err)...)
	if inv != nil && len(inv.rows) > 0 {
		return &LeftBehindError{Stack: n.Stack, Remaining: inv.rows, Err: joined}
	}
	if joined != nil {
		return joined
	}
	// Local secrets go last: while anything remains they may still be needed.
	if err := dir.Remove(); err != nil {
		return err
	}
	log.Step("stack %s is gone", n.Stack)
	return nil
}

// terminateStackInstances ends the stack's own instances and waits until
// they are gone; tagged look-alikes are left alone, with a warning.
func terminateStackInstances(ctx context.Context, s *session, n names, timeout time.Duration, log *progress) error {
	insts, others, err := stackInstances(ctx, s.ec2, n, liveStates)
	if err != nil {
		return err
	}
	for _, l := range others {
		log.Warn("leaving instance %s alone: it is tagged %s=%s, but %s", l.id, tagStack, n.Stack, l.why)
	}
	var ids []string
	for _, i := range insts {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	if len(ids) == 0 {
		return nil
	}
	log.Step("terminating instance(s) %v and waiting for them to go", ids)
	return terminate(ctx, s.ec2, ids, timeout)
}
