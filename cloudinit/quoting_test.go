package cloudinit

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestYAMLScalars checks both scalar styles yamlText picks against PyYAML,
// including strings that a block scalar cannot carry.
func TestYAMLScalars(t *testing.T) {
	t.Parallel()
	cases := []string{
		"plain\n",
		"two\nlines\n",
		"no trailing newline",
		"two trailing newlines\n\n",
		"\nleading newline\n",
		"  leading spaces\n",
		"inner\n\n  blank and indented\n",
		"tab\tinside\n",
		"carriage\r\nreturn\n",
		"nul\x00bell\x07del\x7f\n",
		"unicode é ü 日本 😀\n",
		"line separators \u2028 \u0085\n",
		`quotes ' " backslash \ # : - [ ] { } & * ! | > % @ ` + "`\n",
		"--- \n...\n",
		"",
	}
	var doc strings.Builder
	keys := make([]string, len(cases))
	for i, s := range cases {
		keys[i] = "k" + strconv.Itoa(i)
		doc.WriteString(keys[i] + ": " + yamlText(2, s) + "\n")
		doc.WriteString(keys[i] + "q: " + yamlQuote(s) + "\n")
	}
	cmd := exec.Command(pythonYAML(t), "-c",
		"import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = strings.NewReader(doc.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("PyYAML: %v\n%s\n%s", err, out, doc.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for i, s := range cases {
		if got[keys[i]] != s {
			t.Errorf("yamlText(%q) reads back as %q", s, got[keys[i]])
		}
		if got[keys[i]+"q"] != s {
			t.Errorf("yamlQuote(%q) reads back as %q", s, got[keys[i]+"q"])
		}
	}
}

// parseSystemdEnv follows systemd's env-file.c (parse_env_file_internal, as
// used for EnvironmentFile=): unquoted, '…' and "…" values, where inside
// double quotes a backslash escapes only " \ ` $ and stays literal before
// anything else. Nothing is expanded.
func parseSystemdEnv(s string) map[string]string {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
	)
	env := map[string]string{}
	state := preKey
	var k, v []byte
	lastWS := -1
	push := func() {
		if state == value && lastWS >= 0 {
			v = v[:lastWS]
		}
		env[strings.TrimRight(string(k), " \t")] = string(v)
		k, v, lastWS = nil, nil, -1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case preKey:
			if c == '#' || c == ';' {
				state = comment
			} else if !strings.ContainsRune(" \t\n\r", rune(c)) {
				state, k = key, append(k, c)
			}
		case key:
			switch c {
			case '\n', '\r':
				state, k = preKey, nil
			case '=':
				state, lastWS = preValue, -1
			default:
				k = append(k, c)
			}
		case preValue:
			switch c {
			case '\n', '\r':
				push()
				state = preKey
			case '\'':
				state = singleQuote
			case '"':
				state = doubleQuote
			case '\\':
				state = valueEscape
			case ' ', '\t':
			default:
				state, v = value, append(v, c)
			}
		case value:
			switch c {
			case '\n', '\r':
				push()
				state = preKey
			case '\\':
				state, lastWS = valueEscape, -1
			default:
				if c == ' ' || c == '\t' {
					if lastWS < 0 {
						lastWS = len(v)
					}
				} else {
					lastWS = -1
				}
				v = append(v, c)
			}
		case valueEscape:
			state = value
			if c != '\n' && c != '\r' {
				v = append(v, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v = append(v, c)
			}
		case doubleQuote:
			if c == '"' {
				state = preValue
			} else if c == '\\' {
				state = doubleQuoteEscape
			} else {
				v = append(v, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			if strings.IndexByte("\"\\`$", c) >= 0 {
				v = append(v, c)
			} else if c != '\n' {
				v = append(v, '\\', c)
			}
		case comment:
			if c == '\n' || c == '\r' {
				state = preKey
			}
		}
	}
	if state != preKey && state != key && state != comment {
		push()
	}
	return env
}

func TestParseSystemdEnv(t *testing.T) {
	t.Parallel()
	got := parseSystemdEnv("# c\nA=plain  \nB=\"q\\\"\\$\\n\"\nC='s\\x'\n")
	want := map[string]string{"A": "plain", "B": `q"$\n`, "C": `s\x`}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}
