//go:build unix

package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockStack serialises mlstack runs on one machine that work on the same
// stack, so two concurrent `up`s do not both generate secrets or create a
// second access key. The lock file sits beside the stack's folder because
// down removes the folder. The kernel drops the lock if the process dies.
func lockStack(ctx context.Context, root, stack string, log *progress) (func(), error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, usagef("state directory %s is not writable: %v", root, errors.Unwrap(err))
	}
	path := filepath.Join(root, "."+stack+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, usagef("state directory %s is not writable: %v", root, errors.Unwrap(err))
	}
	warned := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !warned {
			log.info("another mlstack run is working on stack %s; waiting for it", stack)
			warned = true
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			f.Close()
			return nil, err
		}
	}
}
