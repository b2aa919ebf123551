package provision

// What status and ls show of stacks: a resource row, and one stack's
// summary merged from the resources of every kind.

import (
	"sort"
	"sync"
	"time"
)

// resource is one AWS resource the stack owns, as status rows and leftovers show it.
type resource struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// stackInfo is one stack as `ls` shows it. Membership, owner, creation and
// expiry come from the stack's IAM user and role only (tagging those needs
// iam:Tag*): an EC2 tag, which anyone with ec2:CreateTags can set, makes
// no stack and moves no expiry.
type stackInfo struct {
	Stack         string    `json:"stack"`
	Region        string    `json:"region"`
	Owner         string    `json:"owner,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	InstanceState string    `json:"instance_state"`
	TrackingURI   string    `json:"tracking_uri,omitempty"`
	Resources     int       `json:"resources"`
	// Orphan: tagged resources without the stack's IAM user or role (a
	// partial down, or a look-alike): no sweep touches them.
	Orphan bool `json:"orphan,omitempty"`
}

// expired reports whether the stack's expiry has passed.
func (i stackInfo) expired(now time.Time) bool {
	return !i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)
}

// stackSet merges resources into stacks by (stack, region).
type stackSet struct {
	mu sync.Mutex
	m  map[[2]string]*stackInfo
}

// add counts a tagged resource toward its stack; f records what the
// resource tells (an instance's state).
func (s *stackSet) add(region string, tags map[string]string, f func(*stackInfo)) {
	s.merge(region, tags, false, f)
}

// addRegional adds the stack's IAM user or role under the region it is
// tagged with, when that region is wanted: it makes the stack a member and
// gives its owner, creation and expiry.
func (s *stackSet) addRegional(tags map[string]string, want map[string]bool) {
	if r := tags[tagRegion]; want[r] {
		s.merge(r, tags, true, nil)
	}
}

func (s *stackSet) merge(region string, tags map[string]string, iamEntity bool, f func(*stackInfo)) {
	stack := tags[tagStack]
	if stack == "" || validateStack(stack) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{stack, region}
	info := s.m[key]
	if info == nil {
		info = &stackInfo{Stack: stack, Region: region, InstanceState: "none", Orphan: true}
		s.m[key] = info
	}
	info.Resources++
	if f != nil {
		f(info)
	}
	if !iamEntity {
		return
	}
	info.Orphan = false
	if info.Owner == "" {
		info.Owner = tags[tagOwner]
	}
	if t, err := time.Parse(time.RFC3339, tags[tagCreatedAt]); err == nil && (info.CreatedAt.IsZero() || t.Before(info.CreatedAt)) {
		info.CreatedAt = t
	}
	// The earliest expiry of user and role wins: a sweep must not miss a
	// stack because one of them was retagged later.
	if t, err := time.Parse(time.RFC3339, tags[tagExpiresAt]); err == nil && (info.ExpiresAt.IsZero() || t.Before(info.ExpiresAt)) {
		info.ExpiresAt = t
	}
}

// sorted is the set's stacks by region, then name.
func (s *stackSet) sorted() []stackInfo {
	out := make([]stackInfo, 0, len(s.m))
	for _, v := range s.m {
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
