package cloud

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
	KindUser     = "iam_user"
	KindRole     = "iam_role"
	KindProfile  = "instance_profile"
	KindBucket   = "s3_bucket"
	KindSG       = "security_group"
	KindKeyPair  = "key_pair"
	KindInstance = "instance"
	KindParam    = "ssm_parameter"

	KindDB            = "rds_database"
	KindDBSubnetGroup = "rds_subnet_group"
	KindDBSnapshot    = "rds_snapshot"
)

// PlanStep is one change up would make: its verb (the first word of Text),
// the kind and name of the resource it changes, and the step in words as
// --dry-run prints it after "(plan) would". --output json carries all four,
// so that a program reads the plan without parsing prose.
type PlanStep struct {
	Verb string `json:"verb"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// Step makes a planStep from its sentence.
func Step(kind, name, format string, args ...any) PlanStep {
	text := fmt.Sprintf(format, args...)
	verb, _, _ := strings.Cut(text, " ")
	return PlanStep{Verb: verb, Kind: kind, Name: name, Text: text}
}

// Resource states besides an instance's own (running, stopped, …).
const (
	StateExists   = "exists"
	stateUntagged = "untagged" // a bucket this machine created and has not tagged yet
	// StateForeign: a resource of a derived name without the stack's tag.
	// inventory keeps such rows apart (stackInventory.alone): down names
	// them as left alone, status does not show them.
	StateForeign = "foreign"
	// StateLookalike: an IAM user or role under /mlstack/ tagged for a
	// stack but not of its derived name. Anyone allowed to make IAM
	// entities there can make one, so it vouches for nothing.
	StateLookalike = "look-alike"
)

// Resource is one AWS resource the stack owns.
type Resource struct {
	Kind  string `json:"kind"`
	ID    string `json:"id"` // the id AWS gave it; a bucket's is its name
	Name  string `json:"name"`
	State string `json:"state"`
}

// InstanceInfo is the stack's server.
type InstanceInfo struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	State string `json:"state"`
}

// Health of the tracking server, as status and up report it.
const (
	HealthOK          = "healthy"     // /health answered 200
	HealthBad         = "unhealthy"   // it answered something else
	HealthUnreachable = "unreachable" // no answer
	HealthNoServer    = "no_server"   // no running instance
	HealthNotChecked  = "not_checked" // ls, up --no-wait
)

// StackInfo is one stack. Membership, owner, creation and expiry come from
// the stack's IAM user and role only (tagging those needs iam:Tag*): an EC2
// tag, which anyone with ec2:CreateTags can set, makes no stack and moves
// no expiry.
type StackInfo struct {
	Stack     string
	Account   string
	Region    string
	Owner     string
	CreatedAt time.Time
	ExpiresAt time.Time
	Instance  *InstanceInfo // nil: none
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
	DBClass        string // the RDS database's class and status, for the cost
	DBState        string
	// Backups and NewestBackup: the server's backups in the bucket (status).
	Backups      int
	NewestBackup time.Time
	EnvFile      string // the env file on this machine, if any
	Resources    []Resource
	// Orphan: tagged resources without the stack's IAM user or role (a
	// partial down, or a look-alike): no sweep touches them.
	Orphan bool
}

// StackJSON is stackInfo as JSON: every key always there, null when
// unknown, times in RFC 3339.
type StackJSON struct {
	Stack           string        `json:"stack"`
	Account         string        `json:"account"`
	Region          string        `json:"region"`
	Owner           *string       `json:"owner"`
	Orphan          bool          `json:"orphan"`
	CreatedAt       *time.Time    `json:"created_at"`
	ExpiresAt       *time.Time    `json:"expires_at"`
	Expired         bool          `json:"expired"`
	Instance        *InstanceInfo `json:"instance"`
	TrackingURI     *string       `json:"tracking_uri"`
	Health          string        `json:"health"`
	AllowedCIDRs    []string      `json:"allowed_cidrs"`
	SSH             bool          `json:"ssh"`
	Artifacts       *string       `json:"artifacts"`
	Database        *string       `json:"database"`
	NewestBackup    *time.Time    `json:"newest_backup"`
	CostPerMonthUSD *float64      `json:"cost_per_month_usd"`
	EnvFile         *string       `json:"env_file"`
	Resources       []Resource    `json:"resources"`
}

func (i StackInfo) MarshalJSON() ([]byte, error) {
	return json.Marshal(i.json(time.Now()))
}

func (i StackInfo) json(now time.Time) StackJSON {
	j := StackJSON{
		Stack: i.Stack, Account: i.Account, Region: i.Region, Owner: orNull(i.Owner), Orphan: i.Orphan,
		CreatedAt: timeOrNull(i.CreatedAt), ExpiresAt: timeOrNull(i.ExpiresAt), Expired: i.Expired(now),
		Instance: i.Instance, TrackingURI: orNull(i.TrackingURI), Health: i.Health,
		AllowedCIDRs: NonNil(i.AllowedCIDRs), SSH: i.SSH, Artifacts: orNull(i.Artifacts), Database: orNull(i.Database), NewestBackup: timeOrNull(i.NewestBackup), EnvFile: orNull(i.EnvFile), Resources: NonNil(i.Resources),
	}
	if j.Health == "" {
		j.Health = HealthNotChecked
	}
	if c, ok := i.CostPerMonth(); ok {
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

// NonNil makes an empty list [] in JSON, not null.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Expired reports whether the stack's expiry has passed.
func (i StackInfo) Expired(now time.Time) bool {
	return !i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)
}

// InstanceState is the server's state, or "none".
func (i StackInfo) InstanceState() string {
	if i.Instance == nil {
		return "none"
	}
	return i.Instance.State
}

// Vouch records what the stack's IAM user or role says: the stack is no
// orphan; its owner, and its creation and expiry, the earliest of both (a
// sweep must not miss a stack because one of them was retagged later).
func (i *StackInfo) Vouch(tags map[string]string) {
	i.Orphan = false
	if i.Owner == "" {
		i.Owner = tags[tagOwner]
	}
	if t, err := time.Parse(time.RFC3339, tags[TagCreatedAt]); err == nil && (i.CreatedAt.IsZero() || t.Before(i.CreatedAt)) {
		i.CreatedAt = t
	}
	if t, err := time.Parse(time.RFC3339, tags[TagExpiresAt]); err == nil && (i.ExpiresAt.IsZero() || t.Before(i.ExpiresAt)) {
		i.ExpiresAt = t
	}
}

// StackSet merges resources into stacks by (stack, region).
type StackSet struct {
	mu      sync.Mutex
	account string
	m       map[[2]string]*StackInfo
}

func NewStackSet(account string) *StackSet {
	return &StackSet{account: account, m: map[[2]string]*StackInfo{}}
}

// Add counts a tagged resource toward its stack; f records what the
// resource tells (an instance's state, a group's rules).
func (s *StackSet) Add(region string, tags map[string]string, r Resource, f func(*StackInfo)) {
	s.merge(region, tags, r, false, f)
}

// addRegional adds an IAM user or role under the region it is tagged
// with, when that region is wanted: the stack's own makes the stack a
// member and gives its owner, creation and expiry; any other is a
// look-alike and says nothing.
func (s *StackSet) addRegional(tags map[string]string, r Resource, want map[string]bool) {
	region := tags[TagRegion]
	if !want[region] {
		return
	}
	if !vouches(tags[TagStack], r) {
		r.State = StateLookalike
		s.merge(region, tags, r, false, nil)
		return
	}
	s.merge(region, tags, r, true, nil)
}

// vouches reports whether r is the stack's own IAM user or role: only its
// derived names count, since any name under /mlstack/ can carry the tag.
func vouches(stack string, r Resource) bool {
	n := NamesFor(stack, "", "")
	return r.Kind == KindUser && r.Name == n.User || r.Kind == KindRole && r.Name == n.Role
}

func (s *StackSet) merge(region string, tags map[string]string, r Resource, iamEntity bool, f func(*StackInfo)) {
	stack := tags[TagStack]
	if stack == "" || ValidateStack(stack) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{stack, region}
	info := s.m[key]
	if info == nil {
		info = &StackInfo{Stack: stack, Account: s.account, Region: region, Health: HealthNotChecked, Orphan: true}
		s.m[key] = info
	}
	info.Resources = append(info.Resources, r)
	if f != nil {
		f(info)
	}
	if iamEntity {
		info.Vouch(tags)
	}
}

// Sorted is the set's stacks by region, then name, each with its
// resources in a stable order.
func (s *StackSet) Sorted() []StackInfo {
	out := make([]StackInfo, 0, len(s.m))
	for _, v := range s.m {
		SortResources(v.Resources)
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
var kindOrder = map[string]int{KindInstance: 0, KindDB: 1, KindDBSnapshot: 2, KindSG: 3, KindDBSubnetGroup: 4, KindKeyPair: 5,
	KindRole: 6, KindProfile: 7, KindParam: 8, KindBucket: 9, KindUser: 10}

func SortResources(rs []Resource) {
	sort.SliceStable(rs, func(i, j int) bool {
		if kindOrder[rs[i].Kind] != kindOrder[rs[j].Kind] {
			return kindOrder[rs[i].Kind] < kindOrder[rs[j].Kind]
		}
		return rs[i].ID < rs[j].ID
	})
}
