package provision

import "context"

// openedStack is one stack opened by a lifecycle command: its session,
// derived names and local state, with the per-stack lock held until release.
type openedStack struct {
	s       *session
	n       Names
	sd      stateDir
	st      *State // nil when this machine has no local state for the stack
	release func()
}

// openStack takes the stack's lock (unless lock is false, for plans that
// change nothing), connects, derives the names and loads the local state,
// refusing a state folder of another account or region.
func openStack(ctx context.Context, c *Config, log *progress, lock bool) (*openedStack, error) {
	o := &openedStack{sd: newStateDir(c.StateDir, c.Stack), release: func() {}}
	if lock {
		unlock, err := lockStack(ctx, c.StateDir, c.Stack, log)
		if err != nil {
			return nil, err
		}
		o.release = unlock
	}
	var err error
	defer func() {
		if err != nil {
			o.release()
		}
	}()
	if o.s, err = connect(ctx, c); err != nil {
		return nil, err
	}
	o.n = NamesFor(c.Stack, o.s.account, o.s.region)
	if err = o.n.Check(); err != nil {
		return nil, err
	}
	if o.st, err = o.sd.loadFor(o.s.account, o.s.region); err != nil {
		return nil, err
	}
	return o, nil
}
