package local

import "sync"

// Store is the one writer of a stack's secrets while a command runs:
// concurrent steps (a new access key, a new launch nonce) change them only
// through Update, which saves before the change takes effect, so what the
// command uses is always what is on disk.
type Store struct {
	dir Dir
	mu  sync.Mutex
	cur Secrets
}

// NewStore starts from s, which is saved already or saved by the first Update.
func NewStore(d Dir, s Secrets) *Store { return &Store{dir: d, cur: s} }

// Get returns a copy of the current secrets.
func (s *Store) Get() Secrets {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.Clone()
}

// Update applies change to a copy, saves it atomically, and only then makes
// it current; on a failed save nothing changes.
func (s *Store) Update(change func(*Secrets)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cur.Clone() // change must not reach s.cur before the save
	change(&next)
	if err := s.dir.Save(&next); err != nil {
		return err
	}
	s.cur = next
	return nil
}
