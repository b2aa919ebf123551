package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ArtifactDir is where a test keeps files for a person to look at
// afterwards (a browser's screenshots): $MLSTACK_TEST_ARTIFACTS/<test name>
// when that is set (CI keeps it), else a temp dir that goes with the test.
// The test logs the path either way.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("MLSTACK_TEST_ARTIFACTS")
	if root == "" {
		dir := t.TempDir()
		t.Logf("artifacts (removed after the test; set MLSTACK_TEST_ARTIFACTS to keep them): %s", dir)
		return dir
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "__", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	t.Logf("artifacts: %s", dir)
	return dir
}
