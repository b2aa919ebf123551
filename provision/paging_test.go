package provision

// The rule behind issue 25: every call of an operation AWS pages (botocore's
// paginators-1.json, in internal/awsmodel) goes through the SDK's paginator
// or a loop that feeds the answer's token back. A lone call reads the first
// page and misses the rest on AWS (IAM's 101st user), whatever a stand-in
// answers in tests.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// pagedPackages are the production packages: every one that calls AWS,
// and any added later.
var pagedPackages = []string{"./provision/...", "./cmd/..."}

func TestEveryPaginatedCallPages(t *testing.T) {
	t.Parallel()
	l := newExportLoader(t, pagedPackages...)
	calls := 0
	for _, dir := range l.roots {
		pkg, files := l.check(t, dir.ImportPath, dir.Dir, dir.GoFiles)
		for _, f := range files {
			for _, c := range awsCalls(l.fset, pkg.info, f) {
				calls++
				if c.problem != "" {
					t.Errorf("%s: %s", c.pos, c.problem)
				}
			}
		}
	}
	if calls < 50 { // the checker itself broke: it must see the SDK calls
		t.Errorf("only %d AWS SDK calls found in %v", calls, pagedPackages)
	}
}

// TestPagingRule: the rule tells a lone call from a paginator, a token
// loop and a forwarding wrapper.
func TestPagingRule(t *testing.T) {
	t.Parallel()
	l := newExportLoader(t, "github.com/aws/aws-sdk-go-v2/service/iam")
	const head = `package p
import (
	"context"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)
type api interface {
	iam.ListUsersAPIClient
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
}
`
	for _, c := range []struct {
		name, body string
		problems   int
	}{
		{"one call", `func f(ctx context.Context, c api) { c.ListUsers(ctx, &iam.ListUsersInput{}) }`, 1},
		{"method value", `func f(ctx context.Context, c api) { g := c.ListUsers; g(ctx, nil) }`, 1},
		{"loop without the token", `func f(ctx context.Context, c api) { for i := 0; i < 2; i++ { c.ListUsers(ctx, nil) } }`, 1},
		{"paginator", `func f(ctx context.Context, c api) { p := iam.NewListUsersPaginator(c, nil); for p.HasMorePages() { p.NextPage(ctx) } }`, 0},
		{"token loop", `func f(ctx context.Context, c api) {
			in := &iam.ListUsersInput{}
			for {
				out, _ := c.ListUsers(ctx, in)
				if !out.IsTruncated { return }
				in.Marker = out.Marker
			}
		}`, 0},
		{"wrapper", `type w struct{ api }
		func (x w) ListUsers(ctx context.Context, in *iam.ListUsersInput, o ...func(*iam.Options)) (*iam.ListUsersOutput, error) { return x.api.ListUsers(ctx, in, o...) }`, 0},
		{"not paginated", `func f(ctx context.Context, c api) { c.GetUser(ctx, nil) }`, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(head+c.body+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			pkg, files := l.check(t, "p", dir, []string{"p.go"})
			var problems []string
			for _, call := range awsCalls(l.fset, pkg.info, files[0]) {
				if call.problem != "" {
					problems = append(problems, call.problem)
				}
			}
			if len(problems) != c.problems {
				t.Errorf("%d problems, want %d: %q", len(problems), c.problems, problems)
			}
		})
	}
}

// awsCall is one call of an AWS operation, and what is wrong with it.
type awsCall struct {
	pos     token.Position
	problem string
}

// awsCalls finds the calls of AWS SDK operations in f: a callee of the
// SDK's operation shape, (context.Context, *<svc>.<Op>Input,
// ...func(*<svc>.Options)), whatever holds it (client, narrow interface,
// method value). A paginator's constructor has another shape and is the
// way the rule wants.
func awsCalls(fset *token.FileSet, info *types.Info, f *ast.File) []awsCall {
	var out []awsCall
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		service, op, ok := sdkOperation(info.TypeOf(call.Fun))
		if !ok {
			return true
		}
		c := awsCall{pos: fset.Position(call.Pos())}
		if p, paged := awsmodel.PaginatedOp(service, op); paged && !pagesThrough(stack, op, p.InputTokens) {
			c.problem = fmt.Sprintf("%s %s is paginated (%s): call it through %s.New%sPaginator, or in a loop that sets %s from the answer",
				service, op, strings.Join(p.OutputTokens, ", "), service, op, strings.Join(p.InputTokens, ", "))
		}
		out = append(out, c)
		return true
	})
	return out
}

// sdkOperation is the service and operation of a callee of the SDK's
// operation shape.
func sdkOperation(t types.Type) (service, op string, ok bool) {
	sig, isSig := t.(*types.Signature)
	if !isSig || sig.Params().Len() != 3 || sig.Params().At(0).Type().String() != "context.Context" {
		return "", "", false
	}
	ptr, isPtr := sig.Params().At(1).Type().(*types.Pointer)
	if !isPtr {
		return "", "", false
	}
	named, isNamed := ptr.Elem().(*types.Named)
	if !isNamed || named.Obj().Pkg() == nil {
		return "", "", false
	}
	path := named.Obj().Pkg().Path()
	svc, isSDK := strings.CutPrefix(path, "github.com/aws/aws-sdk-go-v2/service/")
	op, isInput := strings.CutSuffix(named.Obj().Name(), "Input")
	return svc, op, isSDK && isInput && !strings.Contains(svc, "/")
}

// pagesThrough: the call (last on stack) sits in a method named after the
// operation (a wrapper that forwards its caller's input and token), or in
// a for loop that assigns one of the request's token fields.
func pagesThrough(stack []ast.Node, op string, tokens []string) bool {
	for i := len(stack) - 1; i >= 0; i-- {
		switch n := stack[i].(type) {
		case *ast.FuncDecl:
			return n.Recv != nil && n.Name.Name == op
		case *ast.ForStmt:
			if assignsField(n.Body, tokens) {
				return true
			}
		case *ast.RangeStmt:
			if assignsField(n.Body, tokens) {
				return true
			}
		}
	}
	return false
}

// assignsField: some assignment in body sets x.<one of fields>.
func assignsField(body ast.Node, fields []string) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return !found
		}
		for _, lhs := range as.Lhs {
			if sel, ok := lhs.(*ast.SelectorExpr); ok && slices.Contains(fields, sel.Sel.Name) {
				found = true
			}
		}
		return !found
	})
	return found
}

// exportLoader type-checks packages from source against the compiler's
// export data of their imports (go list -export), which the test build has
// already made.
type exportLoader struct {
	fset    *token.FileSet
	exports map[string]string
	roots   []listedPackage
	imp     types.Importer
}

type listedPackage struct {
	ImportPath, Dir, Export string
	GoFiles                 []string
	DepOnly                 bool
}

type checkedPackage struct {
	pkg  *types.Package
	info *types.Info
}

func newExportLoader(t *testing.T, patterns ...string) *exportLoader {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,DepOnly"}, patterns...)...)
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	l := &exportLoader{fset: token.NewFileSet(), exports: map[string]string{}}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		l.exports[p.ImportPath] = p.Export
		if !p.DepOnly {
			l.roots = append(l.roots, p)
		}
	}
	l.imp = importer.ForCompiler(l.fset, "gc", func(path string) (io.ReadCloser, error) {
		if f, ok := l.exports[path]; ok && f != "" {
			return os.Open(f)
		}
		return nil, fmt.Errorf("no export data for %s", path)
	})
	return l
}

func (l *exportLoader) check(t *testing.T, path, dir string, names []string) (checkedPackage, []*ast.File) {
	t.Helper()
	var files []*ast.File
	for _, name := range names {
		f, err := parser.ParseFile(l.fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	pkg, err := (&types.Config{Importer: l.imp}).Check(path, l.fset, files, info)
	if err != nil {
		t.Fatalf("type-checking %s: %v", path, err)
	}
	return checkedPackage{pkg, info}, files
}

// moduleRoot is the directory of go.mod above the test's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
	return dir
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
