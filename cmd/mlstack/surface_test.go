//go:build !mlstack_testhooks

package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// The shipped command set, which the test binary is unless built with the
// tag mlstack_testhooks: no flag sends the health poll or the admin login
// to a URI of the caller's choosing.

// testOnlyFlags are the flags of the test build (testhooks.go).
var testOnlyFlags = []string{"health-url", "tracking-uri"}

// TestTestFlagsNotShipped: each command that had such a flag refuses it
// as an unknown flag (exit 2), before any AWS call.
func TestTestFlagsNotShipped(t *testing.T) {
	// Not parallel: it runs the CLI, and two urfave/cli apps running at once
	// race on the package-level help flag that every app applies.
	for _, args := range [][]string{
		{"up", "--health-url", "x"}, {"upgrade", "--health-url", "x"}, {"restore", "--health-url", "x"},
		{"status", "--health-url", "x"}, {"down", "--tracking-uri", "x"}, {"creds", "rotate", "--tracking-uri", "x"},
		{"users", "list", "--tracking-uri", "x"}, {"users", "add", "bob", "--tracking-uri", "x"},
		{"users", "remove", "--tracking-uri", "x", "bob"}, {"users", "passwd", "bob", "--tracking-uri", "x"},
	} {
		res := runLocal(t, args...)
		flag := args[slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--") })]
		if res.code != exitUsage || !strings.Contains(res.stderr, "unknown flag "+flag) {
			t.Errorf("mlstack %s: exit %d, want 2 and unknown flag %s\n%s", strings.Join(args, " "), res.code, flag, res.stderr)
		}
	}
}

// TestNoCommandDeclaresTestFlags: no command, hidden or not, has one.
func TestNoCommandDeclaresTestFlags(t *testing.T) {
	t.Parallel()
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				for _, name := range f.Names() {
					if slices.Contains(testOnlyFlags, name) {
						t.Errorf("mlstack %s%s takes --%s", path, c.Name, name)
					}
				}
			}
			walk(path+c.Name+" ", c.Subcommands)
		}
	}
	walk("", parseOnly().Commands)
}
