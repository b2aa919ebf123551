package awsmodel

// Instance states a termination passes through (moto terminates at once).
const (
	StatePending      = "pending"
	StateShuttingDown = "shutting-down"
)

// Terminations is EC2 winding an instance down: after TerminateInstances a
// describe may still show a just-launched instance pending (the SDK's
// waiter gives up on that state), then shutting-down, and only then
// terminated; each describe that shows a state stands for time passing.
type Terminations struct {
	Stale int // describes that still show pending
	Slow  int // describes that then show shutting-down; 0: terminated at once
	ids   map[string]*winding
}

type winding struct {
	stale, shutting int
	settled         bool // the tier has terminated it for real
}

// Terminate is TerminateInstances of id: whether the instance winds down
// rather than terminating at once (it answers shutting-down), and whether
// this call started it (a repeated call changes nothing).
func (t *Terminations) Terminate(id string) (winds, started bool) {
	if w := t.ids[id]; w != nil {
		return true, false
	}
	if t.Slow <= 0 {
		return false, false
	}
	if t.ids == nil {
		t.ids = map[string]*winding{}
	}
	t.ids[id] = &winding{stale: t.Stale, shutting: t.Slow}
	return true, true
}

// Show is the state a describe of id shows now: pending, shutting-down, or
// "" when the tier's own state stands (never terminated here, or done).
func (t *Terminations) Show(id string) string {
	w := t.ids[id]
	switch {
	case w == nil:
		return ""
	case w.stale > 0:
		w.stale--
		return StatePending
	case w.shutting > 0:
		w.shutting--
		return StateShuttingDown
	}
	return ""
}

// Due are the instances whose wind-down is over, for the tier to terminate
// for real; each is due once.
func (t *Terminations) Due() []string {
	var out []string
	for id, w := range t.ids {
		if w.stale == 0 && w.shutting == 0 && !w.settled {
			w.settled = true
			out = append(out, id)
		}
	}
	return out
}
