package envfile

import (
	"encoding/json"
	"strings"
	"testing"
)

var nasty = []Var{
	{Name: "PLAIN", Value: "abc"},
	{Name: "QUOTES", Value: `it's "quoted"`},
	{Name: "DOLLAR", Value: "$HOME and ${X} and `id`"},
	{Name: "BACKSLASH", Value: `a\b\\c\`},
	{Name: "NEWLINES", Value: "line1\nline2\r\nEOF\n"},
	{Name: "EMPTY", Value: ""},
	{Name: "UNICODE", Value: "pässwörd ✓"},
}

// unDotenv reverses FormatDotenv's escapes, as python-dotenv reads a
// double-quoted value.
func unDotenv(t *testing.T, line string) (string, string) {
	t.Helper()
	name, val, ok := strings.Cut(line, "=")
	if !ok || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		t.Fatalf("not a quoted dotenv line: %q", line)
	}
	var b strings.Builder
	in := val[1 : len(val)-1]
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '"' {
			t.Fatalf("unescaped quote in %q", line)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch in[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte(in[i])
		}
	}
	return name, b.String()
}

func TestFormatDotenvRoundTrip(t *testing.T) {
	out, err := FormatDotenv(nasty)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(nasty) {
		t.Fatalf("%d lines for %d vars: a value broke a line", len(lines), len(nasty))
	}
	for i, line := range lines {
		name, val := unDotenv(t, line)
		if name != nasty[i].Name || val != nasty[i].Value {
			t.Errorf("%s: got %q, want %q", nasty[i].Name, val, nasty[i].Value)
		}
	}
}

func TestFormatJSON(t *testing.T) {
	out, err := FormatJSON(nasty)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	for _, v := range nasty {
		if m[v.Name] != v.Value {
			t.Errorf("%s: %q", v.Name, m[v.Name])
		}
	}
}

func TestFormatGitHubHeredoc(t *testing.T) {
	out, err := FormatGitHub(nasty)
	if err != nil {
		t.Fatal(err)
	}
	// Each block: NAME<<D, the value's lines, D on a line of its own.
	lines := strings.Split(string(out), "\n")
	for _, v := range nasty {
		if len(lines) < 2 {
			t.Fatal("output ends early")
		}
		name, delim, ok := strings.Cut(lines[0], "<<")
		if !ok || name != v.Name || !strings.HasPrefix(delim, "ghadelimiter_") || strings.Contains(v.Value, delim) {
			t.Fatalf("bad header %q", lines[0])
		}
		var val []string
		i := 1
		for ; lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		if got := strings.Join(val, "\n"); got != v.Value {
			t.Errorf("%s: got %q, want %q", v.Name, got, v.Value)
		}
		lines = lines[i+1:]
	}
	if _, err := FormatGitHub([]Var{{Name: "BAD NAME", Value: "x"}}); err == nil {
		t.Error("an invalid name was accepted")
	}
	if m := string(MaskLines([]string{"s3cr3t", "multi\nline"})); m != "::add-mask::s3cr3t\n::add-mask::multi\n::add-mask::line\n" {
		t.Errorf("mask lines %q", m)
	}
}

// TestUnset: a variable to clear is a shell `unset` (read back as such) and
// an empty value in the formats that cannot remove one.
func TestUnset(t *testing.T) {
	vars := []Var{{Name: "A", Value: "1"}, {Name: "TOKEN", Unset: true}, {Name: "OTHER", Unset: true}}
	sh, err := FormatShell(vars)
	if err != nil || string(sh) != "unset TOKEN OTHER\nexport A='1'\n" {
		t.Fatalf("shell: %q, %v", sh, err)
	}
	back, err := Parse(sh)
	if err != nil || len(back) != 3 || back[0] != (Var{Name: "TOKEN", Unset: true}) || back[2] != vars[0] {
		t.Fatalf("parse: %+v, %v", back, err)
	}
	for name, format := range map[string]func([]Var) ([]byte, error){"dotenv": FormatDotenv, "json": FormatJSON, "github": FormatGitHub} {
		out, err := format(vars)
		if err != nil || !strings.Contains(string(out), "TOKEN") {
			t.Errorf("%s: %q, %v", name, out, err)
		}
	}
	if d, _ := FormatDotenv(vars); !strings.Contains(string(d), "TOKEN=\"\"\n") {
		t.Errorf("dotenv does not empty TOKEN: %q", d)
	}
	for _, bad := range []string{"unset A-B\n", "unset A A\n", "unset A"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if _, err := FormatShell([]Var{{Name: "A", Unset: true}, {Name: "A", Value: "1"}}); err == nil {
		t.Error("a name both unset and set was accepted")
	}
}
