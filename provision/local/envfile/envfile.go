// Package envfile writes and reads the stack's env file: `export NAME='value'`
// lines that any POSIX shell can source and that are safe to append to an
// .envrc whatever bytes the values hold (passwords, URLs, keys).
package envfile

import (
	"bytes"
	"fmt"
	"strings"
)

// Var is one variable, in file order: exported with Value, or, with Unset,
// removed from the environment (a shell `unset`; the other formats, which
// cannot remove, give it an empty value).
type Var struct {
	Name, Value string
	Unset       bool
}

// shellQuote quotes s as one POSIX shell word. Inside single quotes nothing is
// special (no $, `, \ or newline handling), so the only byte needing care is
// the single quote itself: each one is written as a closing quote, a
// backslash-escaped quote and an opening quote.
// The result is safe for any byte string; note that a shell variable cannot
// hold a NUL byte, so FormatShell rejects those.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// validName reports whether name matches ^[A-Za-z_][A-Za-z0-9_]*$, the
// portable shell variable name syntax. Anything else could be interpreted as
// something other than an assignment.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// FormatShell renders vars as `export NAME='value'` lines, one per variable,
// each ending in '\n'. It fails on an invalid name, a value containing a NUL
// byte (shells cannot store it, so the variable would be silently truncated)
// and a repeated name (the earlier value would be silently overridden).
func FormatShell(vars []Var) ([]byte, error) {
	var b bytes.Buffer
	seen := make(map[string]bool, len(vars))
	var unset []string
	for _, v := range vars {
		if v.Unset {
			if !validName(v.Name) || seen[v.Name] {
				return nil, fmt.Errorf("envfile: invalid or repeated variable name %q", v.Name)
			}
			seen[v.Name] = true
			unset = append(unset, v.Name)
		}
	}
	if len(unset) > 0 {
		b.WriteString("unset " + strings.Join(unset, " ") + "\n")
	}
	for _, v := range vars {
		if v.Unset {
			continue
		}
		if !validName(v.Name) {
			return nil, fmt.Errorf("envfile: invalid variable name %q", v.Name)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("envfile: variable %s given twice", v.Name)
		}
		seen[v.Name] = true
		if strings.IndexByte(v.Value, 0) >= 0 {
			return nil, fmt.Errorf("envfile: value of %s contains a NUL byte, which a shell variable cannot hold", v.Name)
		}
		b.WriteString("export ")
		b.WriteString(v.Name)
		b.WriteByte('=')
		b.WriteString(shellQuote(v.Value))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// Parse reads back what FormatShell writes. It is deliberately not a shell
// parser: each entry must be `export NAME=` followed by a word made only of
// '...' segments and \' escapes, then a newline. Blank lines and lines
// starting with '#' between entries are skipped so a hand-added comment does
// not break reading. Anything else is an error, never a guess.
func Parse(data []byte) ([]Var, error) {
	var vars []Var
	seen := map[string]bool{}
	line := 1 // line where the current entry starts, for errors
	for len(data) > 0 {
		switch data[0] {
		case '\n':
			data = data[1:]
			line++
			continue
		case '#':
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				return vars, nil
			}
			data = data[i+1:]
			line++
			continue
		}
		if bytes.HasPrefix(data, []byte("unset ")) {
			unset, rest, err := parseUnset(data, line, seen)
			if err != nil {
				return nil, err
			}
			vars, data = append(vars, unset...), rest
			line++
			continue
		}
		v, rest, err := parseEntry(data, line)
		if err != nil {
			return nil, err
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("envfile: line %d: variable %s given twice", line, v.Name)
		}
		seen[v.Name] = true
		data = rest
		line += 1 + strings.Count(v.Value, "\n")
		vars = append(vars, v)
	}
	return vars, nil
}

// parseUnset reads an `unset NAME...` line.
func parseUnset(data []byte, line int, seen map[string]bool) ([]Var, []byte, error) {
	end := bytes.IndexByte(data, '\n')
	if end < 0 {
		return nil, nil, fmt.Errorf("envfile: line %d: unset line without a newline", line)
	}
	var vars []Var
	for _, name := range strings.Fields(string(data[len("unset "):end])) {
		if !validName(name) || seen[name] {
			return nil, nil, fmt.Errorf("envfile: line %d: invalid or repeated variable name %q", line, name)
		}
		seen[name] = true
		vars = append(vars, Var{Name: name, Unset: true})
	}
	return vars, data[end+1:], nil
}

// parseEntry reads one `export NAME='value'` entry and its newline from the
// start of data, and returns what follows it.
func parseEntry(data []byte, line int) (Var, []byte, error) {
	const prefix = "export "
	if !bytes.HasPrefix(data, []byte(prefix)) {
		return Var{}, nil, fmt.Errorf("envfile: line %d: expected %q", line, prefix)
	}
	data = data[len(prefix):]
	eq := bytes.IndexByte(data, '=')
	if eq < 0 {
		return Var{}, nil, fmt.Errorf("envfile: line %d: missing '='", line)
	}
	name := string(data[:eq])
	if !validName(name) {
		return Var{}, nil, fmt.Errorf("envfile: line %d: invalid variable name %q", line, name)
	}
	value, data, err := parseWord(data[eq+1:], line, name)
	if err != nil {
		return Var{}, nil, err
	}
	if len(data) == 0 || data[0] != '\n' {
		return Var{}, nil, fmt.Errorf("envfile: line %d: unexpected text after value of %s", line, name)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return Var{}, nil, fmt.Errorf("envfile: line %d: value of %s contains a NUL byte", line, name)
	}
	return Var{Name: name, Value: value}, data[1:], nil
}

// parseWord reads a word made only of '...' segments and \' escapes.
func parseWord(data []byte, line int, name string) (string, []byte, error) {
	var val strings.Builder
	segments := 0
	for {
		switch {
		case bytes.HasPrefix(data, []byte(`\'`)):
			val.WriteByte('\'')
			data = data[2:]
		case len(data) > 0 && data[0] == '\'':
			end := bytes.IndexByte(data[1:], '\'')
			if end < 0 {
				return "", nil, fmt.Errorf("envfile: line %d: unterminated quote in value of %s", line, name)
			}
			val.Write(data[1 : 1+end])
			data = data[end+2:]
		default:
			if segments == 0 {
				return "", nil, fmt.Errorf("envfile: line %d: value of %s is not single-quoted", line, name)
			}
			return val.String(), data, nil
		}
		segments++
	}
}
