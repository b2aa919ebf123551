package browsertest

import (
	"os"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

// TestMain fails a run outside CI that skipped tests for lack of chromium
// or the MLflow venv, with a banner saying how to run everything.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
