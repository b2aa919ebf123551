//go:build unix

package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

// TestCheckSafe: a state directory, or a stack's folder, that another user
// can write is refused with the command that fixes it; a shared /tmp-like
// root (sticky) is excused, a stack folder in it is not.
func TestCheckSafe(t *testing.T) {
	for _, tt := range []struct {
		name              string
		rootMode, dirMode os.FileMode // 0: not made
		owner             int         // the stack folder's uid when not -1 (needs root)
		link              bool        // the stack folder is a link to a folder of the owner
		want              string      // "" passes
	}{
		{"fresh", 0o700, 0, -1, false, ""},
		{"made by mlstack", 0o700, 0o700, -1, false, ""},
		{"readable by others", 0o755, 0o755, -1, false, ""},
		{"world-writable root", 0o777, 0, -1, false, "is writable by others (mode 0777)"},
		{"group-writable root", 0o775, 0o700, -1, false, "is writable by others (mode 0775)"},
		{"sticky root, like /tmp", 0o777 | os.ModeSticky, 0o700, -1, false, ""},
		{"group-writable stack folder", 0o700, 0o770, -1, false, "is writable by others (mode 0770)"},
		{"sticky stack folder", 0o700, 0o777 | os.ModeSticky, -1, false, "is writable by others (mode 0777)"},
		{"another user's stack folder", 0o777 | os.ModeSticky, 0o700, 4242, false, "belongs to uid 4242, not to you"},
		{"a link to another user's folder", 0o777 | os.ModeSticky, 0o700, 4242, true, "belongs to uid 4242, not to you"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "state")
			dir := StackDir(root, "demo").Path()
			mustDo(t, os.Mkdir(root, 0o700))
			if tt.dirMode != 0 {
				made := dir
				if tt.link {
					made = filepath.Join(filepath.Dir(root), "elsewhere")
					mustDo(t, os.Symlink(made, dir))
				}
				mustDo(t, os.Mkdir(made, 0o700))
				mustDo(t, os.Chmod(made, tt.dirMode))
				if tt.owner >= 0 {
					if os.Getuid() != 0 {
						testenv.Missing(t, "giving a folder to another uid needs root (CI runs as root)")
					}
					mustDo(t, os.Lchown(made, tt.owner, -1))
				}
			}
			mustDo(t, os.Chmod(root, tt.rootMode))
			err := CheckSafe(root, "demo")
			var unsafe *UnsafeDirError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckSafe = %v, want nil", err)
			case tt.want == "":
			case !errors.As(err, &unsafe) || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("CheckSafe = %v, want an UnsafeDirError saying %q", err, tt.want)
			case !strings.Contains(err.Error(), "chmod go-w "+unsafe.Dir) && !strings.Contains(err.Error(), "chown "):
				t.Errorf("no command that fixes it: %v", err)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
