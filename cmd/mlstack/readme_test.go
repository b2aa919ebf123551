package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README is the user's contract: these tests keep it in step with the
// code it describes.

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	must(t, err)
	return string(b)
}

// codeBlocks returns the bodies of the README's fenced blocks of lang.
func codeBlocks(text, lang string) []string {
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestReadmeGoVersion: the Go version the README asks for is go.mod's.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	must(t, err)
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(mod))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "Go " + m[1] + " or newer"; !strings.Contains(readme(t), want) {
		t.Errorf("the README does not say %q (go.mod: go %s)", want, m[1])
	}
}

// readmeCommand is an mlstack command line of a shell block, bare or in
// eval "$(…)".
var readmeCommand = regexp.MustCompile(`^(?:eval "\$\()?(mlstack [^")]*)`)

// TestReadmeCommandsParse: every mlstack command in the README's shell
// blocks parses as written.
func TestReadmeCommandsParse(t *testing.T) {
	n := 0
	for _, block := range codeBlocks(readme(t), "sh") {
		for _, line := range strings.Split(block, "\n") {
			m := readmeCommand.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n++
			if err := parseOnly().Run(words(m[1])); err != nil {
				t.Errorf("README: %q does not parse: %v", line, err)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d mlstack commands found in the README's sh blocks", n)
	}
}

// TestReadmeJSONSchema: the README's example stack is the schema (every
// key, no other) and its table explains every key.
func TestReadmeJSONSchema(t *testing.T) {
	text := readme(t)
	blocks := codeBlocks(text, "json")
	if len(blocks) != 1 {
		t.Fatalf("want one json block in the README, found %d", len(blocks))
	}
	d := decodeStack(t, blocks[0])
	if d.Instance == nil || len(d.Resources) == 0 {
		t.Errorf("the example shows no instance or resources: %+v", d)
	}
	table := text[strings.Index(text, "### JSON output"):]
	table = table[:strings.Index(table, "\n\n`up --dry-run")]
	for _, k := range stackKeys {
		if !strings.Contains(table, "`"+k+"`") {
			t.Errorf("the README's JSON table does not explain %q", k)
		}
	}
	for _, kind := range []string{"iam_user", "iam_role", "instance_profile", "s3_bucket", "security_group", "key_pair", "instance", "ssm_parameter"} {
		if !strings.Contains(table, "`"+kind+"`") {
			t.Errorf("the README's JSON table does not name the kind %q", kind)
		}
	}
	for _, h := range []string{"healthy", "unhealthy", "unreachable", "no_server", "not_checked"} {
		if !strings.Contains(table, "`"+h+"`") {
			t.Errorf("the README's JSON table does not name the health %q", h)
		}
	}
}
