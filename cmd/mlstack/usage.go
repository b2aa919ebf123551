package main

// Usage errors as people can act on them: flags named with their two
// dashes, what was typed echoed back, "did you mean" for a near miss, and
// the right order when a flag comes before the command.

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// oneDash is a flag as Go's flag package names it in errors: "-timeout".
var oneDash = regexp.MustCompile(`(^|[\s"])-([a-z][a-z0-9-]+)`)

const undefinedFlagPrefix = "flag provided but not defined: -"

func usageError(c *cli.Context, err error, _ bool) error {
	msg := oneDash.ReplaceAllString(err.Error(), "$1--$2")
	where := "mlstack"
	var flags []cli.Flag
	if c.Command != nil && c.Command.Name != "" {
		where, flags = "mlstack "+c.Command.FullName(), c.Command.Flags
	}
	if name, ok := strings.CutPrefix(err.Error(), undefinedFlagPrefix); ok {
		msg = "unknown flag --" + name + didYouMean(name, visibleFlagNames(flags), "--")
	}
	return &provision.UsageError{Msg: fmt.Sprintf("%s (see `%s --help`)", msg, where)}
}

// unknownCommand refuses a command that does not exist, with the nearest
// one when it is near.
func unknownCommand(name string, cmds []*cli.Command, where string) error {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return &provision.UsageError{Msg: fmt.Sprintf("unknown command %q%s (see `%s --help`)", name, didYouMean(name, names, ""), where)}
}

// didYouMean is "; did you mean X?" for the candidate nearest to typed,
// when it is near enough to be a typo.
func didYouMean(typed string, candidates []string, prefix string) string {
	best, score := "", 0.0
	for _, c := range candidates {
		if s := smetrics.JaroWinkler(typed, c, 0.7, 4); s > score {
			best, score = c, s
		}
	}
	if score < 0.8 {
		return ""
	}
	return fmt.Sprintf("; did you mean %s%s?", prefix, best)
}

func visibleFlagNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		names = append(names, f.Names()...)
	}
	return names
}

// flagBeforeCommand refuses `mlstack --stack demo up`: every flag belongs
// to a command and comes after it. The message shows the order that works.
func flagBeforeCommand(app *cli.App, args []string) error {
	if len(args) < 3 || !strings.HasPrefix(args[1], "-") || isAppFlag(args[1]) {
		return nil
	}
	for j := 2; j < len(args); j++ {
		if app.Command(args[j]) != nil {
			fixed := append(append([]string{"mlstack", args[j]}, args[1:j]...), args[j+1:]...)
			return &provision.UsageError{Msg: fmt.Sprintf("%s comes before the command: flags go after it, as in `%s`",
				args[1], provision.ShellLine(fixed))}
		}
	}
	return nil
}

// isAppFlag is a flag of mlstack itself rather than of a command.
func isAppFlag(a string) bool {
	switch a {
	case "-h", "--help", "-v", "--version", "--generate-bash-completion":
		return true
	}
	return false
}

// completeFlags completes the visible flags of c, or its subcommands.
func completeFlags(c *cli.Command) cli.BashCompleteFunc {
	return func(ctx *cli.Context) {
		last := ""
		if len(os.Args) > 2 {
			last = os.Args[len(os.Args)-2]
		}
		w := ctx.App.Writer
		if !strings.HasPrefix(last, "-") {
			for _, sub := range c.Subcommands {
				if !sub.Hidden && sub.Name != "help" {
					fmt.Fprintln(w, sub.Name)
				}
			}
			return
		}
		for _, name := range visibleFlagNames(c.Flags) {
			if len(name) > 1 && strings.HasPrefix("--"+name, last) {
				fmt.Fprintln(w, "--"+name)
			}
		}
	}
}
