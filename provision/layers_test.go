package provision

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestLayers: no layer imports one above it. The compiler already refuses
// a cycle with provision; this also keeps the leaves (local, region,
// server) and the AWS layer from growing sideways into each other.
func TestLayers(t *testing.T) {
	t.Parallel()
	const mod = "github.com/mlstack/mlstack/"
	for _, tt := range []struct {
		pkg    string
		mayUse []string // module packages pkg may import, directly or not
	}{
		{"provision/internal/cloud", []string{"cloudinit", "templates", "provision/local", "provision/local/envfile", "provision/region"}},
		{"provision/internal/cloud/cloudfake", []string{"provision/internal/cloud", "cloudinit", "templates", "provision/local", "provision/local/envfile", "provision/region", "internal/awsmodel"}},
		{"provision/server", []string{"provision/local", "provision/local/envfile"}},
		{"provision/local", []string{"provision/local/envfile"}},
		{"provision/region", nil},
	} {
		deps := moduleDeps(t, mod, mod+tt.pkg)
		for _, d := range deps {
			if !slices.Contains(tt.mayUse, strings.TrimPrefix(d, mod)) {
				t.Errorf("%s imports %s, a layer it may not use", tt.pkg, d)
			}
		}
	}
}

// moduleDeps are the module's packages that pkg imports, transitively
// (production files only).
func moduleDeps(t *testing.T, mod, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(path string)
	walk = func(path string) {
		p, err := build.Default.Import(path, ".", 0)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, mod) && !seen[imp] {
				seen[imp] = true
				walk(imp)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
