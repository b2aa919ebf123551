package local

import "fmt"

// UnsafeDirError is a state directory, or a stack's folder in it, that
// another user of this machine can write: they could plant the env file,
// the pinned certificate or known_hosts that env, ui and check trust.
type UnsafeDirError struct {
	Dir, Why, Fix string
}

func (e *UnsafeDirError) Error() string {
	return fmt.Sprintf("%s %s: other users of this machine could plant the files mlstack trusts there; %s", e.Dir, e.Why, e.Fix)
}
