package main

import (
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/urfave/cli/v2"
)

// The manual is README.md plus docs/*.md. These tests keep its pieces
// joined up: links land on a file and heading that exist, every page is
// reachable from the README, and every command and flag a user can type is
// documented somewhere in it.

var (
	fence   = regexp.MustCompile("(?ms)^```.*?^```")
	mdLink  = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)
	scheme  = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
)

// prose is text without its fenced blocks: a "# comment" in a shell block
// is not a heading, and a link in an example is not one to follow.
func prose(text string) string {
	return fence.ReplaceAllString(text, "")
}

// anchors are the ids GitHub gives text's headings: lowercased, spaces to
// hyphens, punctuation other than - and _ dropped, repeats numbered.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(prose(text), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			id += "-" + strconv.Itoa(n)
		}
		seen[b.String()]++
		out[id] = true
	}
	return out
}

// TestAnchorsAsGitHub: the slug rules above on headings the docs use.
func TestAnchorsAsGitHub(t *testing.T) {
	t.Parallel()
	got := anchors("# Changing what runs: replacement\n## Tracking data in PostgreSQL (RDS)\n" +
		"```sh\n# not a heading\n```\n### `--db` flag\n## Same\n## Same\n")
	for _, want := range []string{"changing-what-runs-replacement", "tracking-data-in-postgresql-rds", "--db-flag", "same", "same-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a fenced block was taken for a heading")
	}
}

// TestDocLinks: every relative link in README.md and docs/*.md names a
// file that exists and, with a #fragment into a Markdown file, a heading
// that file has; and the README links every docs/*.md page.
func TestDocLinks(t *testing.T) {
	t.Parallel()
	n := 0
	for _, doc := range docPaths(t) {
		for _, m := range mdLink.FindAllStringSubmatch(prose(readDoc(t, doc)), -1) {
			target := m[1]
			if scheme.MatchString(target) {
				continue // a web address: not checked offline
			}
			n++
			if err := checkLink(t, doc, target); err != "" {
				t.Errorf("%s: link %q: %s", doc, target, err)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d relative links found in the docs", n)
	}
	linked := map[string]bool{}
	for _, m := range mdLink.FindAllStringSubmatch(prose(readme(t)), -1) {
		linked[strings.SplitN(m[1], "#", 2)[0]] = true
	}
	for _, doc := range docPaths(t)[1:] {
		if !linked[doc] {
			t.Errorf("README.md does not link %s", doc)
		}
	}
}

// checkLink says what is wrong with a link from doc to target, or "".
func checkLink(t *testing.T, doc, target string) string {
	t.Helper()
	file, frag, _ := strings.Cut(target, "#")
	dest := doc
	if file != "" {
		dest = path.Clean(path.Join(path.Dir(doc), file))
		if strings.HasPrefix(dest, "../") {
			return "points outside the repository"
		}
		if _, err := os.Stat("../../" + dest); err != nil {
			return "no such file " + dest
		}
	}
	if frag == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	if !anchors(readDoc(t, dest))[frag] {
		return "no heading #" + frag + " in " + dest
	}
	return ""
}

// TestDocsEveryCommandAndFlag: each command a user can type has a row in
// a command table ("| `mlstack up"; a subcommand may share its parent's
// row as "add\|list"), and each flag they can give is written somewhere
// in the docs. Hidden flags are for tests and benchmarks.
func TestDocsEveryCommandAndFlag(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	for _, doc := range docPaths(t) {
		all.WriteString(readDoc(t, doc))
	}
	text := all.String()
	n := 0
	var walk func(parent string, cmds []*cli.Command)
	walk = func(parent string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			n++
			name := strings.TrimSpace(parent + " " + c.Name)
			if !commandRow(text, parent, c.Name) {
				t.Errorf("no row for `mlstack %s` in a command table of the docs", name)
			}
			for _, f := range c.Flags {
				if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
					continue
				}
				for _, fn := range f.Names() {
					if !strings.Contains(text, dashes(fn)+fn) {
						t.Errorf("mlstack %s: the flag %s%s is not in the docs", name, dashes(fn), fn)
					}
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", parseOnly().Commands)
	if n < 15 {
		t.Errorf("only %d commands walked", n)
	}
}

// dashes is what a flag name is typed with: -y, --stack.
func dashes(name string) string {
	if len(name) == 1 {
		return "-"
	}
	return "--"
}

// commandRow: text has a table row for the command, on its own
// ("| `mlstack creds rotate") or among its siblings ("| `mlstack users
// add\|list\|remove").
func commandRow(text, parent, name string) bool {
	lead := "| `mlstack " + strings.TrimSpace(parent+" ")
	if parent == "" {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta("| `mlstack "+name) + "[` ]").MatchString(text)
	}
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(lead+" ") + "([^` ]*)")
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		for _, alt := range strings.Split(m[1], `\|`) {
			if alt == name {
				return true
			}
		}
	}
	return false
}
