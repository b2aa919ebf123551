package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SkipDirVar names the directory where a child process of a sharded run
// (a package's tests run each in a process of their own) leaves its
// skips, for the parent's one banner: children that each printed one
// would bury the run's output in banners.
const SkipDirVar = "MLSTACK_TEST_SKIP_DIR"

// record writes this process's skips to a file of its own in dir, one
// "count<TAB>reason" line each, and returns code: the run's verdict is the
// parent's (Collected), which fails a run with skips.
func record(code int, dir string, skipped map[string]int, w io.Writer) int {
	var b strings.Builder
	for reason, n := range skipped {
		fmt.Fprintf(&b, "%d\t%s\n", n, strings.ReplaceAll(reason, "\n", " "))
	}
	f, err := os.CreateTemp(dir, "skips-")
	if err == nil {
		_, err = f.WriteString(b.String())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		// The parent cannot see the skips: fail here, with the banner.
		fmt.Fprintf(w, "testenv: recording skips in %s: %v\n", dir, err)
		banner(w, skipped)
		return max(code, 1)
	}
	return code
}

// Collected is Run's verdict for a parent whose children (SkipDirVar set
// to dir) ran the tests: code, or 1 when they skipped tests, with the
// banner on w.
func Collected(code int, dir string, w io.Writer) int {
	skipped, err := readSkips(dir)
	if err != nil {
		fmt.Fprintf(w, "testenv: reading the children's skips: %v\n", err)
		return max(code, 1)
	}
	if len(skipped) == 0 {
		return code
	}
	banner(w, skipped)
	return max(code, 1)
}

func readSkips(dir string) (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "skips-*"))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	skipped := map[string]int{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading skips: %w", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if line == "" {
				continue
			}
			count, reason, ok := strings.Cut(line, "\t")
			n, err := strconv.Atoi(count)
			if !ok || err != nil {
				return nil, fmt.Errorf("%s: bad line %q", name, line)
			}
			skipped[reason] += n
		}
	}
	return skipped, nil
}
