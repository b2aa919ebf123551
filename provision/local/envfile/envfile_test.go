package envfile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/internal/testenv"
)

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `''`},
		{"abc", `'abc'`},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{`'\''`, `''\''\'\'''\'''`},
		{"$(rm -rf /)", `'$(rm -rf /)'`},
		{"`id`", "'`id`'"},
		{"a\nb", "'a\nb'"},
		{`back\slash`, `'back\slash'`},
		{"héllo 世界", "'héllo 世界'"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"A", true},
		{"_", true},
		{"a_b9", true},
		{"AWS_SECRET_ACCESS_KEY", true},
		{"", false},
		{"9A", false},
		{"A-B", false},
		{"A B", false},
		{"A=B", false},
		{"É", false},
		{"A;rm", false},
		{"A\n", false},
	}
	for _, tt := range tests {
		if got := validName(tt.name); got != tt.want {
			t.Errorf("validName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFormatShell(t *testing.T) {
	tests := []struct {
		desc    string
		vars    []Var
		want    string
		wantErr string
	}{
		{"none", nil, "", ""},
		{"two", []Var{{Name: "A", Value: "1"}, {Name: "B", Value: "x y"}}, "export A='1'\nexport B='x y'\n", ""},
		{"empty value", []Var{{Name: "A", Value: ""}}, "export A=''\n", ""},
		{"quote", []Var{{Name: "P", Value: "a'b"}}, "export P='a'\\''b'\n", ""},
		{"newline", []Var{{Name: "P", Value: "a\n"}}, "export P='a\n'\n", ""},
		{"bad name", []Var{{Name: "A-B", Value: "x"}}, "", "invalid variable name"},
		{"empty name", []Var{{Name: "", Value: "x"}}, "", "invalid variable name"},
		{"NUL", []Var{{Name: "A", Value: "a\x00b"}}, "", "NUL"},
		{"duplicate", []Var{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}}, "", "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := FormatShell(tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		desc    string
		in      string
		want    []Var
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"one", "export A='1'\n", []Var{{Name: "A", Value: "1"}}, ""},
		{"empty value", "export A=''\n", []Var{{Name: "A", Value: ""}}, ""},
		{"escaped quotes", "export A='a'\\''b'\\'''\n", []Var{{Name: "A", Value: "a'b'"}}, ""},
		{"multi-line value", "export A='x\nexport B=1\n'\nexport C='c'\n",
			[]Var{{Name: "A", Value: "x\nexport B=1\n"}, {Name: "C", Value: "c"}}, ""},
		{"comments and blanks", "# made by mlstack\n\nexport A='1'\n\n# end\n", []Var{{Name: "A", Value: "1"}}, ""},
		{"comment without newline", "export A='1'\n# end", []Var{{Name: "A", Value: "1"}}, ""},
		{"no export", "A='1'\n", nil, "expected"},
		{"unquoted", "export A=1\n", nil, "not single-quoted"},
		{"double quoted", "export A=\"1\"\n", nil, "not single-quoted"},
		{"no newline", "export A='1'", nil, "unexpected text"},
		{"trailing text", "export A='1' ; rm -rf /\n", nil, "unexpected text"},
		{"unterminated", "export A='1\n", nil, "unterminated"},
		{"missing =", "export A\n", nil, "missing '='"},
		{"bad name", "export 1A='x'\n", nil, "invalid variable name"},
		{"NUL", "export A='\x00'\n", nil, "NUL"},
		{"duplicate", "export A='1'\nexport A='2'\n", nil, "given twice"},
		{"error line number", "export A='1\n2'\nexport B=x\n", nil, "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzShellRoundTrip checks the two promises of the env file for any value:
// mlstack reads back exactly what it wrote, and bash sourcing the file sets
// exactly that value (and runs nothing). Under plain `go test` only the seeds
// run; `go test -fuzz FuzzShellRoundTrip ./provision/envfile/` explores more.
func FuzzShellRoundTrip(f *testing.F) {
	for _, s := range []string{
		"",
		"plain",
		"'",
		"''",
		`'\''`,
		"it's",
		`"double" quotes`,
		"$(rm -rf /)",
		"`rm -rf /`",
		"$(touch pwned)",
		"`touch pwned`",
		"'; touch pwned; '",
		"'$(touch pwned)'",
		"$HOME ${HOME} $1 $@ $$",
		`\`,
		`\\'`,
		`ends with backslash\`,
		"\n",
		"a\nb",
		"trailing newline\n",
		"\n\nexport MLSTACK_B='hijacked'\n",
		"\r\n\t\v\f",
		"!history !! ^x^y",
		"# not a comment",
		"*?[a]~",
		"unicode: héllo 世界 🚀",
		"\x01\x7f\xff\xfe invalid UTF-8 and bash's internal CTLESC/CTLNUL",
		"a\x00b", // rejected: a shell variable cannot hold NUL
		"https://user:p@ss'w\"ord@example.com:5000/?q=1&x=$y",
	} {
		f.Add(s)
	}
	bash, _ := exec.LookPath("bash")
	f.Fuzz(func(t *testing.T, value string) {
		// A second variable after the fuzzed one proves the value cannot
		// swallow or inject following lines.
		vars := []Var{{Name: "MLSTACK_A", Value: value}, {Name: "MLSTACK_B", Value: "after"}}
		data, err := FormatShell(vars)
		if strings.IndexByte(value, 0) >= 0 {
			if err == nil {
				t.Fatalf("FormatShell accepted a NUL byte: %q", data)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		if !reflect.DeepEqual(got, vars) {
			t.Fatalf("round trip: got %+v, want %+v", got, vars)
		}
		if bash == "" {
			testenv.Missing(t, "bash is not installed (the round trip was checked, sourcing not)")
		}
		checkBash(t, bash, data, value)
	})
}

// checkBash sources data in a clean bash and compares what it exported.
func checkBash(t *testing.T, bash string, data []byte, value string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "stack.env")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// NUL separates the outputs: no value can contain it. ${X@a} prints the
	// attributes, "x" proving the variable is exported.
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c",
		`source "$1" && printf '%s\0%s\0%s' "${MLSTACK_A@a}" "$MLSTACK_A" "$MLSTACK_B"`,
		"bash", file)
	cmd.Dir = dir // a broken quote running `touch pwned` would leave a file here
	// Clean environment (no BASH_ENV, no inherited MLSTACK_*), UTF-8 like a
	// user's terminal so multibyte parsing is exercised.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("bash sourcing %q: %v, stderr: %s", data, err, stderr.Bytes())
	}
	if want := "x\x00" + value + "\x00after"; stdout.String() != want {
		t.Fatalf("bash sourcing %q printed %q, want %q", data, stdout.Bytes(), want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("sourcing %q created files in %s: %v", data, dir, entries)
	}
}

// FuzzParse feeds Parse arbitrary files (it reads a file a user may have
// edited): it must not panic, and whatever it accepts must survive a
// FormatShell/Parse round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"export A='1'\n",
		"# c\n\nexport A='a'\\''b'\nexport B='\n'\n",
		"export A='",
		"export A=''\\'",
		"export =''\n",
		"export A='1'\nexport A='2'\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := Parse(data)
		if err != nil {
			return
		}
		out, err := FormatShell(vars)
		if err != nil {
			t.Fatalf("Parse accepted %q but FormatShell rejects the result: %v", data, err)
		}
		again, err := Parse(out)
		if err != nil || !reflect.DeepEqual(again, vars) {
			t.Fatalf("re-parse of %q: %+v, %v; want %+v", out, again, err, vars)
		}
	})
}
