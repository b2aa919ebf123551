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

// stackInfo is one stack as `ls` shows it.
type stackInfo struct {
	Stack         string    `json:"stack"`
	Region        string    `json:"region"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	InstanceState string    `json:"instance_state"`
	TrackingURI   string    `json:"tracking_uri,omitempty"`
	Resources     int       `json:"resources"`
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

func (s *stackSet) add(region string, tags map[string]string, f func(*stackInfo)) {
	stack := tags[tagStack]
	if stack == "" || validateStack(stack) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{stack, region}
	info := s.m[key]
	if info == nil {
		info = &stackInfo{Stack: stack, Region: region, InstanceState: "none"}
		s.m[key] = info
	}
	info.Resources++
	if t, err := time.Parse(time.RFC3339, tags[tagCreatedAt]); err == nil && (info.CreatedAt.IsZero() || t.Before(info.CreatedAt)) {
		info.CreatedAt = t
	}
	// The earliest expiry wins: a sweep must not miss a stack because one of
	// its resources was retagged later.
	if t, err := time.Parse(time.RFC3339, tags[tagExpiresAt]); err == nil && (info.ExpiresAt.IsZero() || t.Before(info.ExpiresAt)) {
		info.ExpiresAt = t
	}
	if f != nil {
		f(info)
	}
}

// addRegional adds a global (IAM) resource under the region it is tagged
// with, when that region is wanted.
func (s *stackSet) addRegional(tags map[string]string, want map[string]bool) {
	if r := tags[tagRegion]; want[r] {
		s.add(r, tags, nil)
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
