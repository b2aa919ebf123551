package provision

// What up, status and ls show of stacks: a resource row, and one stack in
// the one JSON schema the three share (docs/commands.md documents it).

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Resource kinds, as JSON names them.
const (
	kindUser     = "iam_user"
	kindRole     = "iam_role"
	kindProfile  = "instance_profile"
	kindBucket   = "s3_bucket"
	kindSG       = "security_group"
	kindKeyPair  = "key_pair"
	kindInstance = "instance"
	kindParam    = "ssm_parameter"

	kindDB            = "rds_database"
	kindDBSubnetGroup = "rds_subnet_group"
	kindDBSnapshot    = "rds_snapshot"
)

// planStep is one change up would make: its verb (the first word of Text),
// the kind and name of the resource it changes, and the step in words as
// --dry-run prints it after "(plan) would". --output json carries all four,
// so that a program reads the plan without parsing prose.
type planStep struct {
	Verb string `json:"verb"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// step makes a planStep from its sentence.
func step(kind, name, format string, args ...any) planStep {
	text := fmt.Sprintf(format, args...)
	verb, _, _ := strings.Cut(text, " ")
	return planStep{Verb: verb, Kind: kind, Name: name, Text: text}
}

// Resource states besides an instance's own (running, stopped, …).
const (
	stateExists   = "exists"
	stateUntagged = "untagged" // a bucket this machine created and has not tagged yet
	// stateForeign: a resource of a derived name without the stack's tag.
	// inventory keeps such rows apart (stackInventory.alone): down names
	// them as left alone, status does not show them.
	stateForeign = "foreign"
)

// resource is one AWS resource the stack owns.
type resource struct {
	Kind  string `json:"kind"`
	ID    string `json:"id"` // the id AWS gave it; a bucket's is its name
	Name  string `json:"name"`
	State string `json:"state"`
}

// instanceInfo is the stack's server.
type instanceInfo struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	State string `json:"state"`
}

// Health of the tracking server, as status and up report it.
const (
	healthOK          = "healthy"     // /health answered 200
	healthBad         = "unhealthy"   // it answered something else
	healthUnreachable = "unreachable" // no answer
	healthNoServer    = "no_server"   // no running instance
	healthNotChecked  = "not_checked" // ls, up --no-wait
)

// stackInfo is one stack. Membership, owner, creation and expiry come from
// the stack's IAM user and role only (tagging those needs iam:Tag*): an EC2
// tag, which anyone with ec2:CreateTags can set, makes no stack and moves
// no expiry.
type stackInfo struct {
	Stack     string
	Account   string
	Region    string
	Owner     string
	CreatedAt time.Time
	ExpiresAt time.Time
	Instance  *instanceInfo // nil: none
	// TrackingURI is the running server's address, else "".
	TrackingURI  string
	Health       string
	AllowedCIDRs []string
	SSH          bool
	Artifacts    string // the artifacts mode; "" when not read (ls)
	// Database is the engine (sqlite, postgres); "" when not known (ls of a
	// stack without an RDS database). DatabaseDetail says more (status).
	Database       string
	DatabaseDetail string
	dbClass        string // the RDS database's class and status, for the cost
	dbState        string
	// Backups and NewestBackup: the server's backups in the bucket (status).
	Backups      int
	NewestBackup time.Time
	EnvFile      string // the env file on this machine, if any
	Resources    []resource
	// Orphan: tagged resources without the stack's IAM user or role (a
	// partial down, or a look-alike): no sweep touches them.
	Orphan bool
}

// stackJSON is stackInfo as JSON: every key always there, null when
// unknown, times in RFC 3339.
type stackJSON struct {
	Stack           string        `json:"stack"`
	Account         string        `json:"account"`
	Region          string        `json:"region"`
	Owner           *string       `json:"owner"`
	Orphan          bool          `json:"orphan"`
	CreatedAt       *time.Time    `json:"created_at"`
	ExpiresAt       *time.Time    `json:"expires_at"`
	Expired         bool          `json:"expired"`
	Instance        *instanceInfo `json:"instance"`
	TrackingURI     *string       `json:"tracking_uri"`
	Health          string        `json:"health"`
	AllowedCIDRs    []string      `json:"allowed_cidrs"`
	SSH             bool          `json:"ssh"`
	Artifacts       *string       `json:"artifacts"`
	Database        *string       `json:"database"`
	NewestBackup    *time.Time    `json:"newest_backup"`
	CostPerMonthUSD *float64      `json:"cost_per_month_usd"`
	EnvFile         *string       `json:"env_file"`
	Resources       []resource    `json:"resources"`
}

func (i stackInfo) MarshalJSON() ([]byte, error) {
	return json.Marshal(i.json(time.Now()))
}

func (i stackInfo) json(now time.Time) stackJSON {
	j := stackJSON{
		Stack: i.Stack, Account: i.Account, Region: i.Region, Owner: orNull(i.Owner), Orphan: i.Orphan,
		CreatedAt: timeOrNull(i.CreatedAt), ExpiresAt: timeOrNull(i.ExpiresAt), Expired: i.expired(now),
		Instance: i.Instance, TrackingURI: orNull(i.TrackingURI), Health: i.Health,
		AllowedCIDRs: nonNil(i.AllowedCIDRs), SSH: i.SSH, Artifacts: orNull(i.Artifacts), Database: orNull(i.Database), NewestBackup: timeOrNull(i.NewestBackup), EnvFile: orNull(i.EnvFile), Resources: nonNil(i.Resources),
	}
	if j.Health == "" {
		j.Health = healthNotChecked
	}
	if c, ok := i.costPerMonth(); ok {
		j.CostPerMonthUSD = &c
	}
	return j
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// nonNil makes an empty list [] in JSON, not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// expired reports whether the stack's expiry has passed.
func (i stackInfo) expired(now time.Time) bool {
	return !i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)
}

// instanceState is the server's state, or "none".
func (i stackInfo) instanceState() string {
	if i.Instance == nil {
		return "none"
	}
	return i.Instance.State
}

// vouch records what the stack's IAM user or role says: the stack is no
// orphan; its owner, and its creation and expiry, the earliest of both (a
// sweep must not miss a stack because one of them was retagged later).
func (i *stackInfo) vouch(tags map[string]string) {
	i.Orphan = false
	if i.Owner == "" {
		i.Owner = tags[tagOwner]
	}
	if t, err := time.Parse(time.RFC3339, tags[tagCreatedAt]); err == nil && (i.CreatedAt.IsZero() || t.Before(i.CreatedAt)) {
		i.CreatedAt = t
	}
	if t, err := time.Parse(time.RFC3339, tags[tagExpiresAt]); err == nil && (i.ExpiresAt.IsZero() || t.Before(i.ExpiresAt)) {
		i.ExpiresAt = t
	}
}

// stackSet merges resources into stacks by (stack, region).
type stackSet struct {
	mu      sync.Mutex
	account string
	m       map[[2]string]*stackInfo
}

func newStackSet(account string) *stackSet {
	return &stackSet{account: account, m: map[[2]string]*stackInfo{}}
}

// add counts a tagged resource toward its stack; f records what the
// resource tells (an instance's state, a group's rules).
func (s *stackSet) add(region string, tags map[string]string, r resource, f func(*stackInfo)) {
	s.merge(region, tags, r, false, f)
}

// addRegional adds the stack's IAM user or role under the region it is
// tagged with, when that region is wanted: it makes the stack a member and
// gives its owner, creation and expiry.
func (s *stackSet) addRegional(tags map[string]string, r resource, want map[string]bool) {
	if region := tags[tagRegion]; want[region] {
		s.merge(region, tags, r, true, nil)
	}
}

func (s *stackSet) merge(region string, tags map[string]string, r resource, iamEntity bool, f func(*stackInfo)) {
	stack := tags[tagStack]
	if stack == "" || validateStack(stack) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{stack, region}
	info := s.m[key]
	if info == nil {
		info = &stackInfo{Stack: stack, Account: s.account, Region: region, Health: healthNotChecked, Orphan: true}
		s.m[key] = info
	}
	info.Resources = append(info.Resources, r)
	if f != nil {
		f(info)
	}
	if iamEntity {
		info.vouch(tags)
	}
}

// sorted is the set's stacks by region, then name, each with its
// resources in a stable order.
func (s *stackSet) sorted() []stackInfo {
	out := make([]stackInfo, 0, len(s.m))
	for _, v := range s.m {
		sortResources(v.Resources)
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Stack < out[j].Stack
	})
	return out
}

// kindOrder is the order resources are listed in: as down deletes them.
var kindOrder = map[string]int{kindInstance: 0, kindDB: 1, kindDBSnapshot: 2, kindSG: 3, kindDBSubnetGroup: 4, kindKeyPair: 5,
	kindRole: 6, kindProfile: 7, kindParam: 8, kindBucket: 9, kindUser: 10}

func sortResources(rs []resource) {
	sort.SliceStable(rs, func(i, j int) bool {
		if kindOrder[rs[i].Kind] != kindOrder[rs[j].Kind] {
			return kindOrder[rs[i].Kind] < kindOrder[rs[j].Kind]
		}
		return rs[i].ID < rs[j].ID
	})
}
