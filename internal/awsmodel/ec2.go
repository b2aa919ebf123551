package awsmodel

import (
	"slices"
	"strings"
)

// ClientTokens is RunInstances' idempotency: EC2 answers a client token it
// has seen with that launch's instance, whatever became of it, and
// launches nothing (moto launches again).
type ClientTokens struct {
	ids map[string]string // token -> instance id
}

// Seen is the instance launched with token, if any ("" is no token).
func (t *ClientTokens) Seen(token string) (id string, ok bool) {
	if token == "" {
		return "", false
	}
	id, ok = t.ids[token]
	return id, ok
}

// Launched records the instance a token's launch made.
func (t *ClientTokens) Launched(token, id string) {
	if token == "" || id == "" {
		return
	}
	if t.ids == nil {
		t.ids = map[string]string{}
	}
	t.ids[token] = id
}

// FreeTierTypes are the types a free-plan account may launch.
var FreeTierTypes = []string{"t3.micro", "t3.small", "t4g.micro", "t4g.small"}

// Plan is what an account and region let RunInstances launch: accounts
// opened after 15 July 2025 on the free plan refuse all but free-tier
// types, and some regions have no t2 at all.
type Plan struct {
	FreeTier []string // set: the account is on the free plan; only these launch
	NoT2     bool     // the region offers no t2 type
}

// RunInstances is the plan's answer to a launch of typ: nil, or the refusal.
func (p Plan) RunInstances(typ string) error {
	switch {
	case p.NoT2 && strings.HasPrefix(typ, "t2."):
		return badRequest("Unsupported", "Your requested instance type ("+typ+") is not supported in your requested Availability Zone.")
	case p.FreeTier != nil && !slices.Contains(p.FreeTier, typ):
		return badRequest("InvalidParameterCombination", "The specified instance type is not eligible for Free Tier. "+
			"For a list of Free Tier instance types, run 'describe-instance-types' with the filter 'free-tier-eligible=true'.")
	}
	return nil
}

// Offered reports whether the region lists typ in its offerings.
func (p Plan) Offered(typ string) bool { return !(p.NoT2 && strings.HasPrefix(typ, "t2.")) }
