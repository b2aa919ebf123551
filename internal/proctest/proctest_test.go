package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartStopsTheWholeGroup: a leader that forks a child which ignores
// SIGTERM (as mlflow server forks uvicorn) leaves neither running once the
// test that started it has ended.
func TestStartStopsTheWholeGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	var leader int
	t.Run("server", func(t *testing.T) {
		cmd := exec.Command("sh", "-c", `sh -c 'trap "" TERM; sleep 300' & echo $! > "$1"; wait`, "sh", pidFile)
		if _, err := Start(t, cmd, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		leader = cmd.Process.Pid
		deadline := time.Now().Add(10 * time.Second)
		for {
			if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the child did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]int{"leader": leader, "child": child} {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("the %s (pid %d) still runs after the test ended", name, pid)
		}
	}
}
