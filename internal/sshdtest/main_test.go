package sshdtest

import (
	"os"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

// TestMain fails a run outside CI that skipped tests for want of sshd.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
