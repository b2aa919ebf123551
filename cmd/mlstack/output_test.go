package main

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// stackDoc is the stack in JSON as docs/commands.md documents it: one schema
// for up, status and ls.
type stackDoc struct {
	Stack     string     `json:"stack"`
	Account   string     `json:"account"`
	Region    string     `json:"region"`
	Owner     *string    `json:"owner"`
	Orphan    bool       `json:"orphan"`
	CreatedAt *time.Time `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Expired   bool       `json:"expired"`
	Instance  *struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		State string `json:"state"`
	} `json:"instance"`
	TrackingURI     *string    `json:"tracking_uri"`
	Health          string     `json:"health"`
	AllowedCIDRs    []string   `json:"allowed_cidrs"`
	SSH             bool       `json:"ssh"`
	Artifacts       *string    `json:"artifacts"`
	Database        *string    `json:"database"`
	NewestBackup    *time.Time `json:"newest_backup"`
	CostPerMonthUSD *float64   `json:"cost_per_month_usd"`
	EnvFile         *string    `json:"env_file"`
	Resources       []struct {
		Kind  string `json:"kind"`
		ID    string `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"resources"`
}

// stackKeys are the keys every stack object has, null or not.
var stackKeys = []string{"stack", "account", "region", "owner", "orphan", "created_at", "expires_at", "expired", "instance",
	"tracking_uri", "health", "allowed_cidrs", "ssh", "artifacts", "database", "newest_backup", "cost_per_month_usd", "env_file", "resources"}

// decodeStacks reads a JSON list of stacks strictly: every documented key
// there, no other.
func decodeStacks(t *testing.T, out string) []stackDoc {
	t.Helper()
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not a JSON list of stacks: %v\n%s", err, out)
	}
	docs := make([]stackDoc, len(raw))
	for i, m := range raw {
		b, _ := json.Marshal(m)
		docs[i] = decodeStack(t, string(b))
	}
	return docs
}

func decodeStack(t *testing.T, out string) stackDoc {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not a JSON stack: %v\n%s", err, out)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := slices.Clone(stackKeys)
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Errorf("stack keys %v, want %v", keys, want)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var d stackDoc
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("stack JSON: %v\n%s", err, out)
	}
	return d
}

func hasResource(d stackDoc, kind, name string) bool {
	for _, r := range d.Resources {
		if r.Kind == kind && r.Name == name {
			return true
		}
	}
	return false
}
