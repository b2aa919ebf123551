package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// README.md and docs/*.md are the user's contract: these tests keep them
// in step with the code they describe, wherever a piece of text lives.

// docPaths are README.md and every docs/*.md, relative to the repository
// root, README.md first.
func docPaths(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("../../docs/*.md")
	must(t, err)
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found")
	}
	sort.Strings(docs)
	paths := []string{"README.md"}
	for _, d := range docs {
		paths = append(paths, strings.TrimPrefix(d, "../../"))
	}
	return paths
}

// readDoc reads one of docPaths.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + path)
	must(t, err)
	return string(b)
}

func readme(t *testing.T) string {
	t.Helper()
	return readDoc(t, "README.md")
}

// codeBlocks returns the bodies of text's fenced blocks of lang.
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
	t.Parallel()
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

// TestReadmeCommandsParse: every mlstack command in the shell blocks of
// README.md and docs/*.md parses as written.
func TestReadmeCommandsParse(t *testing.T) {
	// Not parallel: it runs the CLI, and two urfave/cli apps running at once
	// race on the package-level help flag that every app applies.
	total := 0
	for _, path := range docPaths(t) {
		for _, block := range codeBlocks(readDoc(t, path), "sh") {
			for _, line := range strings.Split(block, "\n") {
				m := readmeCommand.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				total++
				if err := parseOnly().Run(words(m[1])); err != nil {
					t.Errorf("%s: %q does not parse: %v", path, line, err)
				}
			}
		}
	}
	if total < 5 {
		t.Errorf("only %d mlstack commands found in the sh blocks of the docs", total)
	}
}

// jsonDoc is the one doc with a json block (the example stack) and that
// block; two examples would be two schemas to keep in step.
func jsonDoc(t *testing.T) (path, text, block string) {
	t.Helper()
	var found []string
	for _, p := range docPaths(t) {
		text := readDoc(t, p)
		for _, b := range codeBlocks(text, "json") {
			path, block = p, b
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one json block in README.md and docs/*.md, found %d %v", len(found), found)
	}
	return path, readDoc(t, path), block
}

// TestReadmeJSONSchema: the documented example stack is the schema (every
// key, no other) and the table under it explains every key.
func TestReadmeJSONSchema(t *testing.T) {
	t.Parallel()
	path, text, block := jsonDoc(t)
	d := decodeStack(t, block)
	if d.Instance == nil || len(d.Resources) == 0 {
		t.Errorf("%s: the example shows no instance or resources: %+v", path, d)
	}
	start := regexp.MustCompile(`(?m)^#+ JSON output$`).FindStringIndex(text)
	if start == nil {
		t.Fatalf("%s: no \"JSON output\" heading above the example", path)
	}
	table := text[start[0]:]
	end := strings.Index(table, "\n\n`up --dry-run")
	if end < 0 {
		t.Fatalf("%s: the JSON table is not followed by the `up --dry-run` paragraph", path)
	}
	table = table[:end]
	for _, k := range stackKeys {
		if !strings.Contains(table, "`"+k+"`") {
			t.Errorf("%s: the JSON table does not explain %q", path, k)
		}
	}
	kinds := []string{"iam_user", "iam_role", "instance_profile", "s3_bucket", "security_group", "key_pair", "instance",
		"ssm_parameter", "rds_database", "rds_subnet_group", "rds_snapshot"}
	for _, kind := range kinds {
		if !strings.Contains(table, "`"+kind+"`") {
			t.Errorf("%s: the JSON table does not name the kind %q", path, kind)
		}
	}
	for _, h := range []string{"healthy", "unhealthy", "unreachable", "no_server", "not_checked"} {
		if !strings.Contains(table, "`"+h+"`") {
			t.Errorf("%s: the JSON table does not name the health %q", path, h)
		}
	}
}

// TestReadmeTwoCommands: the README shows a newcomer the two commands, the
// main job (up, env, down) and the tests (scripts/test.sh), in its shell
// blocks, and the last line it promises from the tests is test.sh's own.
func TestReadmeTwoCommands(t *testing.T) {
	t.Parallel()
	text := readme(t)
	seen := map[string]bool{}
	for _, block := range codeBlocks(text, "sh") {
		for _, line := range strings.Split(block, "\n") {
			if m := readmeCommand.FindStringSubmatch(line); m != nil {
				seen[words(m[1])[1]] = true
			}
			seen[strings.TrimSpace(line)] = true
		}
	}
	for _, want := range []string{"up", "env", "down", "scripts/test.sh"} {
		if !seen[want] {
			t.Errorf("the README's sh blocks do not show %q", want)
		}
	}
	script, err := os.ReadFile("../../scripts/test.sh")
	must(t, err)
	if !strings.Contains(text, "`== test.sh [MmSSs]: all passed`") ||
		!strings.Contains(string(script), `printf '\n== test.sh [%dm%02ds]: %s\n'`) || !strings.Contains(string(script), `say "all passed"`) {
		t.Error("the README and scripts/test.sh disagree on the line a passing run ends with (== test.sh [MmSSs]: all passed)")
	}
}
