package proctest

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestStopNow: Stop ends the group at once, before the test ends (a
// restart), leader and child, and the test's own cleanup then finds
// nothing left to stop.
func TestStopNow(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", `sleep 300 & wait`)
	exited, err := Start(t, cmd, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	select {
	case <-exited:
		t.Fatal("the leader exited by itself")
	case <-time.After(100 * time.Millisecond):
	}
	start := time.Now()
	Stop(t, cmd, exited, 20*time.Second)
	select {
	case <-exited:
	default:
		t.Error("Stop returned before the leader exited")
	}
	if err := syscall.Kill(-pgid, 0); err == nil || err == syscall.EPERM {
		t.Errorf("processes of group %d still run after Stop", pgid)
	}
	// SIGTERM ends sh and sleep: Stop does not sit out the grace.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Stop took %s for a group that ends on SIGTERM (grace 20s)", d)
	}
}

// TestStartFails: a command that cannot start is an error, and no
// cleanup is registered for a process that does not exist.
func TestStartFails(t *testing.T) {
	t.Parallel()
	exited, err := Start(t, exec.Command("/nonexistent/mlstack-no-such-binary"), time.Second)
	if err == nil || exited != nil {
		t.Errorf("Start of a missing binary = %v, %v; want an error", exited, err)
	}
}
