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
func Lock(ctx context.Context, root, stack string, waiting func()) (unlock func(), err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, notWritable(root, err)
	}
	path := filepath.Join(root, "."+stack+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, notWritable(root, err)
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
		if !warned && waiting != nil {
			waiting()
		}
		warned = true
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
