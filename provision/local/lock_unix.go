//go:build unix

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Lock serialises mlstack runs on one machine that work on the same stack,
// so two concurrent `up`s do not both generate secrets or create a second
// access key. The lock file sits beside the stack's folder because down
// removes the folder. The kernel drops the lock if the process dies.
// waiting is called once when another run holds the lock.
//
// When the stack has no folder here at unlock (down removed it, or the run
// never made one), the lock file goes too, while still held: a run that
// was waiting on it then finds its file unlinked and locks a new one.
func Lock(ctx context.Context, root, stack string, waiting func()) (unlock func(), err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, notWritable(root, err)
	}
	path := filepath.Join(root, "."+stack+".lock")
	warned := false
	for {
		f, err := lockFile(path)
		if err == nil {
			return func() { release(f, path, StackDir(root, stack).Path()) }, nil
		}
		if !errors.Is(err, errBusy) {
			return nil, err
		}
		if !warned && waiting != nil {
			waiting()
		}
		warned = true
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lockOpened runs between opening and locking the file: tests release
// another holder there, the race the inode check guards against.
var lockOpened = func() {}

// errBusy: another run holds the lock, or removed its file meanwhile.
var errBusy = errors.New("lock busy")

// lockFile opens and locks path; errBusy when another run holds it, or
// when the file locked is no longer the one at path (its holder removed it).
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, notWritable(filepath.Dir(path), err)
	}
	lockOpened()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, errBusy
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	held, herr := f.Stat()
	now, perr := os.Stat(path)
	if herr != nil || perr != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, errBusy
	}
	return f, nil
}

// release removes the lock file when the stack's folder is gone, then
// unlocks.
func release(f *os.File, path, stackDir string) {
	if _, err := os.Stat(stackDir); errors.Is(err, os.ErrNotExist) {
		_ = os.Remove(path) // a leftover file is harmless: the next run locks it
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
