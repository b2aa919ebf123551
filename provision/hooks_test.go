package provision

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/testhooks"
)

// exportedOptions is every options struct a caller of provision fills in.
var exportedOptions = []any{
	UpOptions{}, UpgradeOptions{}, RestoreOptions{}, BackupOptions{}, DownOptions{}, StatusOptions{},
	LsOptions{}, EnvOptions{}, CheckOptions{}, RotateOptions{}, UsersOptions{}, SSHOptions{}, LogsOptions{}, UIOptions{},
}

// TestOptionsHaveNoTestHooks: no field a caller can set sends the health
// poll, the admin login or the IP lookup somewhere else; those are test
// hooks, reachable only through internal/testhooks.
func TestOptionsHaveNoTestHooks(t *testing.T) {
	t.Parallel()
	hooksType := reflect.TypeFor[testhooks.Hooks]()
	forbidden := []string{"HealthURL", "TrackingURI", "DetectIP"}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			if slices.Contains(forbidden, f.Name) || f.Type == hooksType {
				t.Errorf("%s.%s: a caller can set a test hook", path, f.Name)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(path+"."+f.Name, f.Type)
			}
		}
	}
	for _, o := range exportedOptions {
		walk(reflect.TypeOf(o).Name(), reflect.TypeOf(o))
	}
}

// TestExportedOptionsListed: a new options struct is checked above too.
func TestExportedOptionsListed(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, o := range exportedOptions {
		listed = append(listed, reflect.TypeOf(o).Name())
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.IsExported() && strings.HasSuffix(ts.Name.Name, "Options") &&
				!slices.Contains(listed, ts.Name.Name) {
				t.Errorf("%s is not in exportedOptions", ts.Name.Name)
			}
			return true
		})
	}
}

// TestHooksOf: the context's hooks (cmd's tests) win over the options'
// (provision's tests); without either there are none.
func TestHooksOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set := testhooks.Hooks{HealthURL: "http://options/health"}
	if got := hooksOf(ctx, set); got.HealthURL != set.HealthURL {
		t.Errorf("no hooks in the context: got %+v, want the options'", got)
	}
	if got := hooksOf(testhooks.With(ctx, testhooks.Hooks{TrackingURI: "http://ctx"}), set); got.TrackingURI != "http://ctx" || got.HealthURL != "" {
		t.Errorf("hooks in the context: got %+v, want only the context's", got)
	}
	if got := hooksOf(ctx, testhooks.Hooks{}); got.HealthURL != "" || got.TrackingURI != "" || got.DetectIP != nil {
		t.Errorf("production: got %+v, want none", got)
	}
}
