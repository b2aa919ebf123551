package provision

import (
	"os"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"
)

// TestMain fails a run outside CI that skipped tests for lack of something
// on this machine (sshd, a tool, the MLflow venv), with a banner saying how
// to run everything: a skipped test checked nothing.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// must fails the test at once on a setup error: a setup step that failed
// unnoticed turns a case into another case, which may still pass.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readFile reads a file the test needs: a missing one fails the test
// rather than compare as empty.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return b
}

// newInstalledFake is a fake AWS of the test's own: commands reach it
// under f.Ctx().
func newInstalledFake(*testing.T) *cloudfake.FakeAWS { return cloudfake.NewFakeAWS() }
