package awsmodel

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// code is the AWS error code of err, "" for nil.
func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "not an *Error: " + err.Error()
	}
	return ""
}

func TestThrottling(t *testing.T) {
	for _, c := range []struct {
		service, code string
		status        int
	}{
		{"s3", "SlowDown", http.StatusServiceUnavailable},
		{"ec2", "RequestLimitExceeded", http.StatusServiceUnavailable},
		{"iam", "Throttling", http.StatusBadRequest},
		{"ssm", "Throttling", http.StatusBadRequest},
	} {
		e := Throttling(c.service)
		if e.Code != c.code || e.Status != c.status || e.ErrorCode() != c.code || e.ErrorMessage() == "" {
			t.Errorf("%s: %+v", c.service, e)
		}
		if !strings.HasPrefix(e.Error(), c.code+": ") {
			t.Errorf("%s: Error() = %q", c.service, e.Error())
		}
	}
}

func TestClientTokens(t *testing.T) {
	var tk ClientTokens
	if _, ok := tk.Seen("a"); ok {
		t.Fatal("an unknown token is seen")
	}
	tk.Launched("a", "i-1")
	tk.Launched("", "i-2") // no token: nothing to replay
	tk.Launched("b", "")   // no instance: nothing either
	for _, c := range []struct {
		token, id string
		ok        bool
	}{{"a", "i-1", true}, {"", "", false}, {"b", "", false}, {"c", "", false}} {
		if id, ok := tk.Seen(c.token); id != c.id || ok != c.ok {
			t.Errorf("Seen(%q) = %q, %v", c.token, id, ok)
		}
	}
	tk.Launched("a", "i-3") // the first launch is the answer, but a tier may not launch twice
	if id, _ := tk.Seen("a"); id != "i-3" {
		t.Errorf("Seen = %q", id)
	}
}

func TestPlan(t *testing.T) {
	free := "InvalidParameterCombination"
	for _, c := range []struct {
		name    string
		plan    Plan
		typ     string
		code    string
		offered bool
	}{
		{"any account", Plan{}, "t2.micro", "", true},
		{"free plan, free type", Plan{FreeTier: FreeTierTypes}, "t3.micro", "", true},
		{"free plan, t2", Plan{FreeTier: FreeTierTypes}, "t2.micro", free, true},
		{"free plan, big type", Plan{FreeTier: []string{"t3.micro"}}, "m5.large", free, true},
		{"empty free list refuses all", Plan{FreeTier: []string{}}, "t3.micro", free, true},
		{"no t2", Plan{NoT2: true}, "t2.micro", "Unsupported", false},
		{"no t2, t3", Plan{NoT2: true}, "t3.micro", "", true},
		{"no t2 beats the free plan", Plan{NoT2: true, FreeTier: FreeTierTypes}, "t2.nano", "Unsupported", false},
	} {
		err := c.plan.RunInstances(c.typ)
		if code(err) != c.code || c.plan.Offered(c.typ) != c.offered {
			t.Errorf("%s: RunInstances(%s) = %v, offered %v", c.name, c.typ, err, c.plan.Offered(c.typ))
		}
		if c.code == free && !strings.Contains(err.Error(), "not eligible for Free Tier") {
			t.Errorf("%s: %v lacks AWS's words", c.name, err)
		}
	}
}

func TestBusyNames(t *testing.T) {
	var free BusyNames
	free.Deleted("b")
	if err := free.Create("b"); err != nil {
		t.Fatalf("For 0: %v", err)
	}
	b := BusyNames{For: 2}
	b.Deleted("b")
	var got []string
	for range 4 {
		got = append(got, code(b.Create("b")))
	}
	if want := []string{"OperationAborted", "OperationAborted", "", ""}; !slices.Equal(got, want) {
		t.Errorf("CreateBucket answers %q, want %q", got, want)
	}
	if err := b.Create("other"); err != nil {
		t.Errorf("another name: %v", err)
	}
	b.Deleted("b")
	var e *Error
	if !errors.As(b.Create("b"), &e) || e.Status != http.StatusConflict {
		t.Errorf("a second delete: %+v", e)
	}
}
