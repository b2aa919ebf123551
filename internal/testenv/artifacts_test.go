package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArtifactDir(t *testing.T) {
	t.Run("kept/sub test", func(t *testing.T) {
		root := t.TempDir()
		t.Setenv("MLSTACK_TEST_ARTIFACTS", root)
		got := ArtifactDir(t)
		want := filepath.Join(root, "TestArtifactDir__kept__sub_test")
		if got != want {
			t.Errorf("ArtifactDir = %s, want %s", got, want)
		}
		if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
			t.Errorf("%s is not a directory: %v", got, err)
		}
	})
	t.Run("temporary", func(t *testing.T) {
		t.Setenv("MLSTACK_TEST_ARTIFACTS", "")
		got := ArtifactDir(t)
		if !strings.HasPrefix(got, os.TempDir()) {
			t.Errorf("ArtifactDir = %s, want a temp dir", got)
		}
	})
}
