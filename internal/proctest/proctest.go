// Package proctest runs a test's helper process (an MLflow server, sshd) in
// a process group of its own and stops the whole group when the test ends:
// such servers fork workers and sessions that would outlive their parent.
package proctest

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Start starts cmd as the leader of a new process group. When the test
// ends, the group gets SIGTERM, then SIGKILL after grace, and cleanup
// returns only once no process of the group is left. exited is closed when
// the leader has exited (its Wait has returned).
func Start(t testing.TB, cmd *exec.Cmd, grace time.Duration) (exited <-chan struct{}, err error) {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() { stopGroup(t, cmd.Process.Pid, done, grace) })
	return done, nil
}

// Stop ends the group of cmd, which Start started, now rather than when the
// test ends (a restart): SIGTERM, SIGKILL after grace, and it returns once
// no process of the group is left. The cleanup then finds nothing to stop.
func Stop(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	t.Helper()
	stopGroup(t, cmd.Process.Pid, exited, grace)
}

// stopGroup ends the group pgid and waits until none of it is left.
func stopGroup(t testing.TB, pgid int, leader <-chan struct{}, grace time.Duration) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-leader:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-leader
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Errorf("processes of group %d still run after SIGKILL", pgid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether any process of the group still exists.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
