package provision

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// SweepFilter chooses the stacks `down --expired` / `down --all` remove.
type SweepFilter struct {
	Expired   bool          // stacks whose mlstack:expires-at has passed
	All       bool          // every stack (with OlderThan: only older ones)
	OlderThan time.Duration // created more than this long ago
}

func (f SweepFilter) match(i StackInfo, now time.Time) bool {
	if f.OlderThan > 0 && (i.CreatedAt.IsZero() || now.Sub(i.CreatedAt) < f.OlderThan) {
		return false
	}
	if f.Expired {
		return i.Expired(now)
	}
	return f.All
}

// sweepParallel bounds concurrent stack deletions: enough to overlap the
// instance waits, few enough to stay clear of API throttling.
const sweepParallel = 4

// Sweep deletes every stack in the region that the filter matches,
// concurrently, and prints a summary line per stack on Out.
func Sweep(ctx context.Context, c Config, f SweepFilter, confirm func(string) (bool, error)) error {
	if !f.Expired && !f.All {
		return usagef("choose what to sweep: --expired or --all")
	}
	if c.Stack != "" {
		return usagef("--stack cannot be combined with --expired or --all")
	}
	c.Stack = "sweep" // satisfies Validate; never used as a name
	if err := c.Validate(false); err != nil {
		return err
	}
	log := newProgress(c.Log)
	s, err := connect(ctx, &c)
	if err != nil {
		return err
	}
	stacks, err := listStacks(ctx, s, []string{s.region})
	if err != nil {
		return err
	}
	now := time.Now()
	var pick []StackInfo
	for _, st := range stacks {
		if f.match(st, now) {
			pick = append(pick, st)
		}
	}
	if len(pick) == 0 {
		log.step("no matching stacks in %s", s.region)
		return nil
	}
	if c.DryRun {
		for _, st := range pick {
			fmt.Fprintf(c.Out, "(plan) would delete stack %s (%d resources, created %s%s)\n", st.Stack, st.Resources,
				st.CreatedAt.Format(time.RFC3339), expiryNote(st))
		}
		return nil
	}
	if !c.Yes {
		if confirm == nil {
			return usagef("refusing to delete %d stack(s) without --yes (no terminal to ask on)", len(pick))
		}
		for _, st := range pick {
			log.info("stack %s (%d resources)", st.Stack, st.Resources)
		}
		ok, err := confirm(fmt.Sprintf("Delete these %d stacks in %s? [y/N] ", len(pick), s.region))
		if err != nil {
			return err
		}
		if !ok {
			return usagef("not confirmed: nothing deleted")
		}
	}

	results := make([]error, len(pick))
	sem := make(chan struct{}, sweepParallel)
	var wg sync.WaitGroup
	for i, st := range pick {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			plog := log.labelled(st.Stack)
			unlock, err := lockStack(ctx, c.StateDir, st.Stack, plog)
			if err != nil {
				results[i] = err
				return
			}
			defer unlock()
			n := NamesFor(st.Stack, s.account, s.region)
			results[i] = deleteStack(ctx, s, n, newStateDir(c.StateDir, st.Stack), c.Timeout, plog)
		}()
	}
	wg.Wait()

	var errs []error
	var left []Resource
	for i, st := range pick {
		var lb *LeftBehindError
		switch err := results[i]; {
		case err == nil:
			fmt.Fprintf(c.Out, "deleted  %s\n", st.Stack)
		case errors.As(err, &lb):
			fmt.Fprintf(c.Out, "LEFT     %s: %d resource(s) remain\n", st.Stack, len(lb.Remaining))
			left = append(left, lb.Remaining...)
			errs = append(errs, fmt.Errorf("stack %s: %w", st.Stack, err))
		default:
			fmt.Fprintf(c.Out, "FAILED   %s: %v\n", st.Stack, err)
			errs = append(errs, fmt.Errorf("stack %s: %w", st.Stack, err))
		}
	}
	if len(left) > 0 {
		return &LeftBehindError{Sweep: true, Remaining: left, Err: errors.Join(errs...)}
	}
	return errors.Join(errs...)
}

func expiryNote(st StackInfo) string {
	if st.ExpiresAt.IsZero() {
		return ""
	}
	return ", expired " + st.ExpiresAt.Format(time.RFC3339)
}
