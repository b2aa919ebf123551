package awsmodel

import (
	"encoding/json"
	"math/rand"
	"slices"
	"sync"
)

// Rule fails calls of one operation.
type Rule struct {
	Op string // the operation as the tier names it ("RunInstances")
	N  int    // calls left to fail; < 0: every call
	// Err is the answer (nil with Drop: none at all). An *Error carries an
	// HTTP status; the in-memory tier answers any error as it is.
	Err error
	// Drop: no answer reaches the caller (a connection closed).
	Drop bool
	// After: the call does its work first, then fails (a lost response).
	// Such a rule counts only calls that succeeded.
	After bool
	// Match, when set, picks the calls to fail by their input (an SDK
	// *Input in the fake, url.Values in the proxy). It runs under the
	// tier's lock, so a test may also use it to act mid-call.
	Match func(in any) bool
}

// Chances fail calls at random, as a flaky network and a busy service do.
type Chances struct {
	Throttle   float64 // answered with the service's throttling error
	DropBefore float64 // the connection closes before the call arrives
	DropAfter  float64 // the call is done, its answer lost
}

// Fault is what the injector decided for one call.
type Fault struct {
	Err   error
	Drop  bool // close the connection instead of answering
	After bool // do the call first (the answer is lost or replaced)
}

// Faults is the one fault injector of both test tiers: rules for named
// operations, then seeded chances, so a failing run repeats.
type Faults struct {
	mu       sync.Mutex
	rules    []*Rule
	rng      *rand.Rand
	chances  Chances
	injected map[string]int
}

// NewFaults is an injector with no rules whose chances draw from seed.
func NewFaults(seed int64) *Faults {
	return &Faults{rng: rand.New(rand.NewSource(seed)), injected: map[string]int{}}
}

// Add adds a rule; earlier rules of an operation go first.
func (f *Faults) Add(r Rule) *Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
	return f
}

// FailNext fails the next n calls of op with err (n < 0: every call).
func (f *Faults) FailNext(op string, err error, n int) *Faults {
	return f.Add(Rule{Op: op, N: n, Err: err})
}

// LoseNext lets the next n calls of op do their work and loses the answers.
func (f *Faults) LoseNext(op string, n int) *Faults {
	return f.Add(Rule{Op: op, N: n, Drop: true, After: true})
}

// SetChances sets the random faults.
func (f *Faults) SetChances(c Chances) *Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chances = c
	return f
}

// Before decides a call's fault before it runs: a rule of op, else a
// chance (service names the throttling error). nil: the call goes through.
func (f *Faults) Before(service, op string, in any) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.take(op, in, false); r != nil {
		f.injected["fail "+op]++
		return &Fault{Err: r.Err, Drop: r.Drop}
	}
	x := f.rng.Float64()
	c := f.chances
	switch {
	case x < c.Throttle:
		f.injected["throttle"]++
		return &Fault{Err: Throttling(service)}
	case x < c.Throttle+c.DropBefore:
		f.injected["drop-before"]++
		return &Fault{Drop: true}
	case x < c.Throttle+c.DropBefore+c.DropAfter:
		f.injected["drop-after"]++
		return &Fault{Drop: true, After: true}
	}
	return nil
}

// After decides the fault of a call that succeeded: a rule with After.
func (f *Faults) After(op string, in any) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.take(op, in, true)
	if r == nil {
		return nil
	}
	if r.Drop {
		f.injected["drop-after"]++
	} else {
		f.injected["fail "+op]++
	}
	return &Fault{Err: r.Err, Drop: r.Drop, After: true}
}

// HasAfter reports whether a rule with After may still fail a call of op,
// so a tier that streams answers knows to hold this one back.
func (f *Faults) HasAfter(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.rules, func(r *Rule) bool { return r.Op == op && r.After && r.N != 0 })
}

// take consumes one call of the first rule that applies. f.mu is held.
func (f *Faults) take(op string, in any, after bool) *Rule {
	for i, r := range f.rules {
		if r.Op != op || r.After != after || r.N == 0 || (r.Match != nil && !r.Match(in)) {
			continue
		}
		if r.N > 0 {
			r.N--
		}
		if r.N == 0 {
			f.rules = slices.Delete(f.rules, i, i+1)
		}
		return r
	}
	return nil
}

// Report is what was injected, by kind, as JSON for a test's log.
func (f *Faults) Report() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.injected)
	return string(b)
}
