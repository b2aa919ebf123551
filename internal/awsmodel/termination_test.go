package awsmodel

import (
	"slices"
	"testing"
)

func TestTerminations(t *testing.T) {
	for _, c := range []struct {
		name        string
		stale, slow int
		winds       bool
		shows       []string
	}{
		{"at once", 1, 0, false, []string{"", ""}},
		{"shutting down", 0, 2, true, []string{StateShuttingDown, StateShuttingDown, "", ""}},
		{"stale, then shutting down", 1, 1, true, []string{StatePending, StateShuttingDown, ""}},
	} {
		tm := Terminations{Stale: c.stale, Slow: c.slow}
		winds, started := tm.Terminate("i-1")
		if winds != c.winds || started != c.winds {
			t.Errorf("%s: Terminate = %v, %v", c.name, winds, started)
		}
		var shows []string
		for range c.shows {
			shows = append(shows, tm.Show("i-1"))
		}
		if !slices.Equal(shows, c.shows) {
			t.Errorf("%s: shows %q, want %q", c.name, shows, c.shows)
		}
	}
}

func TestTerminationsDueOnceAndRepeat(t *testing.T) {
	tm := Terminations{Slow: 1}
	tm.Terminate("i-1")
	if winds, started := tm.Terminate("i-1"); !winds || started {
		t.Errorf("a repeated terminate: %v, %v", winds, started)
	}
	if d := tm.Due(); len(d) != 0 {
		t.Errorf("due before it showed its state: %v", d)
	}
	tm.Show("i-1")
	if d := tm.Due(); !slices.Equal(d, []string{"i-1"}) {
		t.Errorf("due %v", d)
	}
	if d := tm.Due(); len(d) != 0 {
		t.Errorf("due twice: %v", d)
	}
	if s := tm.Show("i-2"); s != "" {
		t.Errorf("an instance never terminated shows %q", s)
	}
	tm.Slow = 0 // a wind-down in progress stays one
	if winds, _ := tm.Terminate("i-1"); !winds {
		t.Error("a settled instance still answers shutting-down (the tier decides what it shows)")
	}
}
