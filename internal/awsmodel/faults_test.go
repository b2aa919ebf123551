package awsmodel

import (
	"errors"
	"strings"
	"testing"
)

var errBoom = errors.New("boom")

func TestFaultsRules(t *testing.T) {
	type call struct {
		after bool
		op    string
		in    any
	}
	for _, c := range []struct {
		name  string
		setup func(f *Faults)
		calls []call
		want  []string // per call: "", "err", "drop", "drop-after", "err-after"
	}{
		{"fail next two", func(f *Faults) { f.FailNext("Run", errBoom, 2) },
			[]call{{false, "Run", nil}, {false, "Other", nil}, {false, "Run", nil}, {false, "Run", nil}}, []string{"err", "", "err", ""}},
		{"every call", func(f *Faults) { f.FailNext("Run", errBoom, -1) },
			[]call{{false, "Run", nil}, {false, "Run", nil}, {false, "Run", nil}}, []string{"err", "err", "err"}},
		{"after: only After asks", func(f *Faults) { f.Add(Rule{Op: "Run", N: 1, Err: errBoom, After: true}) },
			[]call{{false, "Run", nil}, {true, "Run", nil}, {true, "Run", nil}}, []string{"", "err-after", ""}},
		{"lose", func(f *Faults) { f.LoseNext("Run", 1) },
			[]call{{false, "Run", nil}, {true, "Run", nil}, {true, "Run", nil}}, []string{"", "drop-after", ""}},
		{"match by input", func(f *Faults) {
			f.Add(Rule{Op: "Del", N: 1, Err: errBoom, Match: func(in any) bool { return in == "b" }})
		}, []call{{false, "Del", "a"}, {false, "Del", "b"}, {false, "Del", "b"}}, []string{"", "err", ""}},
		{"first rule first", func(f *Faults) {
			f.FailNext("Run", errBoom, 1).Add(Rule{Op: "Run", N: 1, Drop: true})
		}, []call{{false, "Run", nil}, {false, "Run", nil}, {false, "Run", nil}}, []string{"err", "drop", ""}},
		{"a spent rule is skipped", func(f *Faults) { f.FailNext("Run", errBoom, 0) },
			[]call{{false, "Run", nil}}, []string{""}},
	} {
		f := NewFaults(1)
		c.setup(f)
		var got []string
		for _, k := range c.calls {
			d := f.Before("ec2", k.op, k.in)
			if k.after {
				d = f.After(k.op, k.in)
			}
			got = append(got, describeFault(d))
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func describeFault(d *Fault) string {
	switch {
	case d == nil:
		return ""
	case d.Drop && d.After:
		return "drop-after"
	case d.Drop:
		return "drop"
	case d.After:
		return "err-after"
	}
	return "err"
}

func TestFaultsMatchRunsAsAHook(t *testing.T) {
	f := NewFaults(1)
	ran := 0
	f.Add(Rule{Op: "Revoke", N: 1, Match: func(any) bool { ran++; return false }})
	if d := f.Before("ec2", "Revoke", nil); d != nil || ran != 1 {
		t.Errorf("fault %v after %d runs", d, ran)
	}
	f.Add(Rule{Op: "Tag", N: 1, Match: func(any) bool { return true }})
	if d := f.Before("ec2", "Tag", nil); d == nil || d.Err != nil || d.Drop {
		t.Errorf("a rule with no error and no drop: %+v", d)
	}
}

func TestFaultsHasAfter(t *testing.T) {
	f := NewFaults(1).FailNext("Run", errBoom, 1)
	if f.HasAfter("Run") {
		t.Error("a rule before the call")
	}
	f.LoseNext("Terminate", 1)
	if !f.HasAfter("Terminate") || f.HasAfter("Run") {
		t.Error("HasAfter")
	}
	f.After("Terminate", nil)
	if f.HasAfter("Terminate") {
		t.Error("a spent rule")
	}
}

func TestFaultsChances(t *testing.T) {
	f := NewFaults(7).SetChances(Chances{Throttle: 0.3, DropBefore: 0.2, DropAfter: 0.2})
	kinds := map[string]int{}
	for range 1000 {
		d := f.Before("s3", "PUT", nil)
		k := describeFault(d)
		if k == "err" && code(d.Err) != "SlowDown" {
			t.Fatalf("S3 throttles with %v", d.Err)
		}
		kinds[k]++
	}
	for k, want := range map[string]int{"": 300, "err": 300, "drop": 200, "drop-after": 200} {
		if kinds[k] < want*2/3 || kinds[k] > want*4/3 {
			t.Errorf("%q %d times of 1000, want about %d", k, kinds[k], want)
		}
	}
	// The same seed gives the same run.
	a, b := NewFaults(3).SetChances(Chances{Throttle: 0.5}), NewFaults(3).SetChances(Chances{Throttle: 0.5})
	for range 50 {
		if describeFault(a.Before("ec2", "X", nil)) != describeFault(b.Before("ec2", "X", nil)) {
			t.Fatal("one seed, two runs")
		}
	}
	rep := a.Report()
	if !strings.Contains(rep, `"throttle":`) {
		t.Errorf("report %s", rep)
	}
}

func TestFaultsReport(t *testing.T) {
	f := NewFaults(1).FailNext("Run", errBoom, 1).LoseNext("Term", 1)
	f.Before("ec2", "Run", nil)
	f.After("Term", nil)
	f.Add(Rule{Op: "Put", N: 1, Err: errBoom, After: true})
	f.After("Put", nil)
	if got := f.Report(); got != `{"drop-after":1,"fail Put":1,"fail Run":1}` {
		t.Errorf("report %s", got)
	}
}
