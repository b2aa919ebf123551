package awsmodel

import "testing"

type dbStep struct {
	status string
	exists bool
}

func describes(r *RDS, id string, n int) []dbStep {
	var out []dbStep
	for range n {
		s, ok := r.Describe(id)
		out = append(out, dbStep{s, ok})
	}
	return out
}

func TestRDSStates(t *testing.T) {
	for _, c := range []struct {
		name  string
		slow  int
		enter func(r *RDS)
		want  []dbStep
	}{
		{"never busy", 2, func(r *RDS) {}, []dbStep{{"", true}, {"", true}}},
		{"creating", 2, func(r *RDS) { r.Created("db") }, []dbStep{{DBCreating, true}, {DBCreating, true}, {"", true}}},
		{"fast", 0, func(r *RDS) { r.Created("db") }, []dbStep{{"", true}}},
		{"new password", 1, func(r *RDS) { r.Modified("db", true) }, []dbStep{{DBResetting, true}, {"", true}}},
		{"other change", 1, func(r *RDS) { r.Modified("db", false) }, []dbStep{{"", true}}},
		{"deleting", 2, func(r *RDS) { r.Deleted("db") }, []dbStep{{DBDeleting, true}, {DBDeleting, true}, {"", false}, {"", false}}},
		{"deleted at once", 0, func(r *RDS) { r.Deleted("db") }, []dbStep{{"", false}}},
	} {
		r := &RDS{Slow: c.slow}
		c.enter(r)
		got := describes(r, "db", len(c.want))
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: describes %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
}

func TestRDSDelete(t *testing.T) {
	r := &RDS{Slow: 2}
	if err := r.Delete("db"); err != nil {
		t.Fatalf("a database never busy: %v", err)
	}
	r.Created("db")
	first, second, third := r.Delete("db"), r.Delete("db"), r.Delete("db") // each call is one describe of RDS's
	if code(first) != "InvalidDBInstanceState" || code(second) != "InvalidDBInstanceState" || third != nil {
		t.Error("a creating database refuses deletion for Slow calls, then deletes")
	}
	if err := r.DeleteSubnetGroup(); err != nil {
		t.Errorf("no database deleting: %v", err)
	}
	r.Deleted("db")
	if err := r.Delete("db"); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if code(r.DeleteSubnetGroup()) != "InvalidDBSubnetGroupStateFault" {
		t.Error("the subnet group is free while a database still deletes")
	}
	describes(r, "db", 2)
	if err := r.DeleteSubnetGroup(); err != nil {
		t.Errorf("after the deletion: %v", err)
	}
}

func TestRDSOffers(t *testing.T) {
	for _, c := range []struct {
		classes                []string
		engine, version, class string
		want                   bool
	}{
		{nil, "postgres", "17.6", "db.t4g.micro", true},
		{nil, "postgres", "17.6", "db.t3.micro", true},
		{nil, "postgres", "", "db.t3.micro", true},
		{nil, "postgres", "17", "db.t3.micro", false}, // the filter matches full versions
		{nil, "postgres", "16.8", "db.t3.micro", false},
		{nil, "postgres", "17.6", "db.m5.large", false},
		{nil, "mysql", "17.6", "db.t3.micro", false},
		{[]string{"db.m5.large"}, "postgres", "17.6", "db.m5.large", true},
		{[]string{"db.m5.large"}, "postgres", "17.6", "db.t3.micro", false},
	} {
		if got := (&RDS{Classes: c.classes}).Offers(c.engine, c.version, c.class); got != c.want {
			t.Errorf("%v offers %s %s %s = %v", c.classes, c.engine, c.version, c.class, got)
		}
	}
	// Classes per version: offered for some version is not offered for 17.
	r := &RDS{ClassesOf: map[string][]string{"17.6": {"db.t3.micro"}, "16.8": {"db.t4g.micro", "db.t3.micro"}}}
	if !r.Offers("postgres", "", "db.t4g.micro") || r.Offers("postgres", "17.6", "db.t4g.micro") || !r.Offers("postgres", "16.8", "db.t4g.micro") {
		t.Error("classes per version")
	}
	if r.DefaultVersion("postgres", "17") != "17.6" || code(r.CreateDBInstance("postgres", "17", "db.t4g.micro")) != "InvalidParameterCombination" ||
		r.CreateDBInstance("postgres", "17", "db.t3.micro") != nil {
		t.Error("CreateDBInstance at the default minor of 17")
	}
}
