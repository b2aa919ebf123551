package mlflowtest

import (
	"os"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

// TestMain fails a run outside CI that skipped tests for want of the venv.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
