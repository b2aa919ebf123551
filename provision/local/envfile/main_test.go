package envfile

import (
	"os"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

// TestMain fails a run outside CI that skipped tests for lack of something
// on this machine (sshd, a tool, the MLflow venv), with a banner saying how
// to run everything: a skipped test checked nothing.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
