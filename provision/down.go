package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// LeftBehindError means down finished but the stack still owns resources
// (exit code 3): running down again should finish the job.
type LeftBehindError struct {
	Stack     string
	Sweep     bool // left by a sweep of several stacks
	Remaining []Resource
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
// it by tag and derived name so it works without local state. Every step
// runs even when an earlier one failed; errors are joined.
func Down(ctx context.Context, c Config, confirm func(prompt string) (bool, error)) error {
	if err := c.Validate(false); err != nil {
		return err
	}
	log := newProgress(c.Log)
	o, err := openStack(ctx, &c, log, !c.DryRun)
	if err != nil {
		return err
	}
	defer o.release()
	s, n, sd := o.s, o.n, o.sd

	found, _, err := inventory(ctx, s, n)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		log.step("stack %s owns nothing in account %s, %s", c.Stack, s.account, s.region)
		if c.DryRun {
			return nil
		}
		return sd.remove()
	}
	if c.DryRun {
		for _, r := range found {
			fmt.Fprintf(c.Out, "(plan) would delete %s %s\n", r.Kind, r.Name)
		}
		return nil
	}
	if !c.Yes {
		if confirm == nil {
			return usagef("refusing to delete stack %s without --yes (no terminal to ask on)", c.Stack)
		}
		for _, r := range found {
			log.info("%s %s", r.Kind, r.Name)
		}
		ok, err := confirm(fmt.Sprintf("Delete stack %s (%d resources above) in %s? [y/N] ", c.Stack, len(found), s.region))
		if err != nil {
			return err
		}
		if !ok {
			return usagef("not confirmed: nothing deleted")
		}
	}

	return deleteStack(ctx, s, n, sd, c.Timeout, log)
}

// deleteStack removes one stack's resources in dependency order, then its
// local state once nothing remains. Every step runs even when an earlier one
// failed; errors are joined, and leftovers make a LeftBehindError.
func deleteStack(ctx context.Context, s *session, n Names, sd stateDir, timeout time.Duration, log *progress) error {
	var errs []error
	insts, err := findInstances(ctx, s.ec2, n.Stack)
	if err != nil {
		errs = append(errs, err)
	}
	var ids []string
	for _, i := range insts {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	if len(ids) > 0 {
		log.step("terminating instance(s) %v and waiting for them to go", ids)
		if err := terminate(ctx, s.ec2, ids, timeout); err != nil {
			errs = append(errs, err)
		}
	}
	// The group cannot go while an interface of the instance is attached.
	if err := deleteSecurityGroups(ctx, s.ec2, n, 3*time.Minute, log); err != nil {
		errs = append(errs, err)
	}
	if err := deleteKeyPair(ctx, s.ec2, n, log); err != nil {
		errs = append(errs, err)
	}
	if err := deleteRole(ctx, s.iam, n, log); err != nil {
		errs = append(errs, err)
	}
	if err := deleteBucket(ctx, s.s3, n, log); err != nil {
		errs = append(errs, err)
	}
	if err := deleteUser(ctx, s.iam, n, log); err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		return errors.Join(append(errs, ctx.Err())...)
	}

	left, _, err := inventory(ctx, s, n)
	if err != nil {
		errs = append(errs, err)
	}
	joined := errors.Join(errs...)
	if len(left) > 0 {
		return &LeftBehindError{Stack: n.Stack, Remaining: left, Err: joined}
	}
	if joined != nil {
		return joined
	}
	// Local secrets go last: while anything remains they may still be needed.
	if err := sd.remove(); err != nil {
		return err
	}
	log.step("stack %s is gone", n.Stack)
	return nil
}
