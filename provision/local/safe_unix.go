//go:build unix

package local

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// CheckSafe refuses a state directory root, or stack's folder in it, that
// another user can write: owned by another uid than this one or root, or
// group- or world-writable. A writable root with the sticky bit (a shared
// /tmp) is excused: others cannot remove or replace what is ours there,
// and a folder they made for the stack is refused by its owner. Missing
// folders pass; mlstack makes them 0700.
func CheckSafe(root, stack string) error {
	if err := checkSafe(root, true); err != nil {
		return err
	}
	return checkSafe(StackDir(root, stack).Path(), false)
}

func checkSafe(dir string, stickyOK bool) error {
	for _, stat := range []func(string) (os.FileInfo, error){os.Lstat, os.Stat} { // the link, then what it names
		fi, err := stat(dir)
		if err != nil {
			// Missing: mlstack makes it 0700. Unreadable, or under a file:
			// the writability check (CheckWritable, Lock) says why.
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		me := os.Getuid()
		if uid := int(st.Uid); uid != me && uid != 0 {
			return &UnsafeDirError{Dir: dir, Why: fmt.Sprintf("belongs to uid %d, not to you (uid %d)", uid, me),
				Fix: fmt.Sprintf("use a state directory of your own (--state-dir or MLSTACK_STATE_DIR), or, if it is yours, `sudo chown %d %s`", me, shellQuote(dir))}
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			continue // a link's own mode means nothing
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 && !(stickyOK && fi.Mode()&fs.ModeSticky != 0) {
			return &UnsafeDirError{Dir: dir, Why: fmt.Sprintf("is writable by others (mode %04o)", perm),
				Fix: fmt.Sprintf("`chmod go-w %s` (mlstack makes it 0700)", shellQuote(dir))}
		}
	}
	return nil
}

// shellQuote quotes path for a POSIX shell when it needs it.
func shellQuote(path string) string {
	if path != "" && strings.Trim(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@%") == "" {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
