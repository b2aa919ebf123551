package awsmodel

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/awsmodel/trim"
	"github.com/mlstack/mlstack/internal/testenv"
)

func TestModelsLoad(t *testing.T) {
	ms, err := Models()
	if err != nil {
		t.Fatal(err)
	}
	patterns := 0
	for _, s := range trim.Services {
		m := ms[s.Name]
		if m == nil {
			t.Fatalf("no model for %s", s.Name)
		}
		for _, op := range s.Ops {
			if _, ok := m.Operations[op]; !ok {
				t.Errorf("%s has no operation %s", s.Name, op)
			}
		}
		for _, sh := range m.Shapes {
			if sh.re != nil {
				patterns++
			}
		}
		for _, u := range m.Unexpressible {
			t.Logf("%s: pattern not expressible in RE2, checked for length only: %s", s.Name, u)
		}
	}
	if patterns < 20 {
		t.Fatalf("only %d patterns compiled", patterns)
	}
	t.Logf("%d patterns compiled", patterns)
}

type tagIn struct {
	Key, Value *string
}

type userIn struct {
	UserName *string
	Path     *string
	Tags     []tagIn
}

func str(s string) *string { return &s }

func TestCheckTree(t *testing.T) {
	for _, tc := range []struct {
		name, svc, op string
		in            any
		code, inMsg   string
	}{
		{"iam user", "iam", "CreateUser", &userIn{UserName: str("mlstack-demo")}, "", ""},
		{"iam user with a space", "iam", "CreateUser", &userIn{UserName: str("mlstack demo")}, "ValidationError", "Value 'mlstack demo' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"iam user name too long", "iam", "CreateUser", &userIn{UserName: str(strings.Repeat("a", 65))}, "ValidationError", "Member must have length less than or equal to 64"},
		{"iam user name missing", "iam", "CreateUser", &userIn{}, "ValidationError", "Value null at 'userName' failed to satisfy constraint: Member must not be null"},
		{"iam path", "iam", "CreateUser", &userIn{UserName: str("u"), Path: str("/dept/ci/")}, "", ""},
		{"iam path without its slash", "iam", "CreateUser", &userIn{UserName: str("u"), Path: str("dept")}, "ValidationError", "at 'path'"},
		{"iam tag value with a comma", "iam", "CreateUser", &userIn{UserName: str("u"), Tags: []tagIn{{str("mlstack:owner"), str("arn:aws:iam::1:user/a,b")}}}, "ValidationError", "at 'tags.1.value'"},
		{"iam tag value, unicode letters", "iam", "CreateUser", &userIn{UserName: str("u"), Tags: []tagIn{{str("k"), str("Jürgen @ Zoë")}}}, "", ""},
		{"ssm name", "ssm", "PutParameter", map[string]any{"Name": "/mlstack/demo/x", "Value": "v"}, "", ""},
		{"ssm value missing", "ssm", "PutParameter", map[string]any{"Name": "/mlstack/demo/x"}, "ValidationException", "at 'value'"},
		{"ssm name too long", "ssm", "PutParameter", map[string]any{"Name": "/" + strings.Repeat("n", 2048), "Value": "v"}, "ValidationException", "length less than or equal to 2048"},
		{"ec2 run without counts", "ec2", "RunInstances", map[string]any{"ImageId": "ami-1"}, "MissingParameter", "maxCount"},
		{"ec2 enums are EC2's own", "ec2", "RunInstances", map[string]any{"MinCount": int64(1), "MaxCount": int64(1), "InstanceType": "t2.nano-x"}, "", ""},
		{"ssm bad enum", "ssm", "PutParameter", map[string]any{"Name": "/x", "Value": "v", "Type": "Secret"}, "ValidationException", "enum value set: [String, StringList, SecureString]"},
		{"unknown operation", "ec2", "NoSuchOperation", map[string]any{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tree map[string]any
			if m, ok := tc.in.(map[string]any); ok {
				tree = m
			} else {
				tree = Tree(tc.in)
			}
			err := CheckTree(tc.svc, tc.op, tree)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Code != tc.code || !strings.Contains(err.Message, tc.inMsg) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.inMsg)
			}
		})
	}
}

// A sensitive value is never echoed, as AWS does not echo it (the
// botocore models put no rule on one; the documented table does).
func TestCheckHidesSensitive(t *testing.T) {
	max := 8.0
	m := &Model{Shapes: map[string]*Shape{
		"In":  {Type: "structure", Members: map[string]Ref{"Password": {Shape: "Pwd"}}},
		"Pwd": {Type: "string", Max: &max, Sensitive: true},
	}}
	c := &checker{model: m}
	c.check("In", map[string]any{"Password": "secret-and-long"}, "")
	err := validationError("rds", c.broken)
	if len(c.broken) != 1 || strings.Contains(err.Message, "secret") || !strings.Contains(err.Message, "at 'password'") {
		t.Fatalf("got %v", err)
	}
}

func TestCompilePattern(t *testing.T) {
	for _, tc := range []struct{ pattern, in string }{
		{`[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`, "{\"Version\":\"2012-10-17\"} 😀"},
		{`(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`, "/a/b/"},
		{`[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, "Zoë 1"},
	} {
		re, err := compilePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if !re.MatchString(tc.in) {
			t.Fatalf("%s refuses %q", tc.pattern, tc.in)
		}
		if re.MatchString(tc.in + "\x01") {
			t.Fatalf("%s accepts a control character", tc.pattern)
		}
	}
}

// TestModelsFresh: the committed models are what cmd/trimmodels writes
// from the moto venv's botocore (CI installs it; elsewhere without it the
// test says so and passes only outside CI).
func TestModelsFresh(t *testing.T) {
	dir := botocoreDir(t)
	out := t.TempDir()
	if err := trim.WriteAll(dir, out); err != nil {
		t.Fatal(err)
	}
	for _, s := range trim.Services {
		want, err := os.ReadFile(filepath.Join(out, s.Name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		have, err := modelFiles.ReadFile("botocore/" + s.Name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("internal/awsmodel/botocore/%s.json is not what botocore in %s gives: run go run ./internal/awsmodel/cmd/trimmodels -botocore %s", s.Name, dir, dir)
		}
	}
}

// botocoreDir is the botocore of moto's venv (MLSTACK_VENV, else the
// repository's .cache/venv, as scripts/moto.sh has it). Without it the
// test fails in CI and, elsewhere, the run reports it as not checked.
func botocoreDir(t *testing.T) string {
	venv := cmp.Or(os.Getenv("MLSTACK_VENV"), filepath.Join("..", "..", ".cache", "venv"))
	dirs, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages", "botocore", "data"))
	if len(dirs) == 0 {
		testenv.Missing(t, "no botocore in the moto venv "+venv+" (scripts/moto.sh installs it)")
	}
	return dirs[0]
}
