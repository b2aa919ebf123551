// Command mlstack creates and removes a remote MLflow tracking stack on AWS.
// Each command's file turns its flags into the options of one provision
// call (flags.go holds the groups they share); the work is in provision.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mlstack/mlstack/provision"
	"github.com/mlstack/mlstack/provision/server"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// Exit codes, documented in docs/commands.md.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitLeftBehind  = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the run winds down; a second one kills it.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := newStreams(stdin, stdout, stderr)
	app := newApp(s)
	err := flagBeforeCommand(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	return report(ctx, err, s, args)
}

func report(ctx context.Context, err error, s streams, args []string) int {
	if err == nil {
		return exitOK
	}
	var remote *server.RemoteExitError
	if errors.As(err, &remote) {
		// `mlstack ssh -- cmd` exits as cmd did, like ssh(1); cmd's own
		// output said why.
		return remote.Status
	}
	prefix := "mlstack: "
	if s.color {
		prefix = "\x1b[31mmlstack:\x1b[0m "
	}
	var left *provision.LeftBehindError
	switch {
	case provision.IsUsage(err):
		fmt.Fprintf(s.stderr, "%s%v\n", prefix, err)
		return exitUsage
	case errors.As(err, &left):
		fmt.Fprintf(s.stderr, "%s%v\n", prefix, err)
		return exitLeftBehind
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		fmt.Fprintf(s.stderr, "%sinterrupted: %v\nlocal files are whole (written atomically); run `%s` again to finish%s\n",
			prefix, err, provision.ShellLine(append([]string{"mlstack"}, args[1:]...)), s.ran.downHint())
		return exitInterrupted
	default:
		fmt.Fprintf(s.stderr, "%s%v\n", prefix, err)
		if hint := provision.DeniedHint(err); hint != "" {
			fmt.Fprintln(s.stderr, hint)
		}
		return exitFailure
	}
}

// addTestFlags gives a test build its hidden flags (testhooks.go, build
// tag mlstack_testhooks); the shipped binary has none.
var addTestFlags = func([]*cli.Command) {}

// commands lists the subcommands; each lives in its own file.
var commands = []func(streams) *cli.Command{
	upCommand,
	upgradeCommand,
	restoreCommand,
	backupCommand,
	downCommand,
	envCommand,
	statusCommand,
	lsCommand,
	credsCommand,
	usersCommand,
	checkCommand,
	sshCommand,
	logsCommand,
	uiCommand,
	policyCommand,
	completionCommand,
}

func newApp(s streams) *cli.App {
	var cmds []*cli.Command
	for _, mk := range commands {
		cmds = append(cmds, finish(mk(s)))
	}
	addTestFlags(cmds)
	app := &cli.App{
		Name:      "mlstack",
		Usage:     "a remote MLflow tracking stack on AWS in one command",
		UsageText: "mlstack COMMAND [flags]   (flags go after the command)",
		Description: "Start with `mlstack up --stack demo`; `mlstack COMMAND --help` shows a command's flags and examples.\n" +
			"Shell completion: `mlstack completion --help`.",
		Version:              provision.Version,
		Reader:               s.stdin,
		Writer:               s.stdout,
		ErrWriter:            s.stderr,
		EnableBashCompletion: true,
		// Errors are reported by run with one line and an exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Commands:       cmds,
	}
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return unknownCommand(c.Args().First(), app.Commands, "mlstack")
		}
		_ = cli.ShowAppHelp(c)
		return &provision.UsageError{Msg: "missing command"}
	}
	return app
}

// finish gives a command (and its subcommands) mlstack's usage errors and
// completion of its visible flags.
func finish(c *cli.Command) *cli.Command {
	c.OnUsageError = usageError
	c.BashComplete = completeFlags(c)
	for _, sub := range c.Subcommands {
		finish(sub)
	}
	return c
}

// terminalConfirm asks on stderr when stdin is a terminal; without one it
// returns nil, so commands refuse instead of prompting. /dev/null is a
// character device but no terminal: CI and cron get no prompt.
func terminalConfirm(stdin io.Reader, stderr io.Writer) func(string) (bool, error) {
	if !isTerminal(stdin) {
		return nil
	}
	return func(prompt string) (bool, error) {
		fmt.Fprint(stderr, prompt)
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return false, nil
		}
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes", nil
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// useColor colours stderr on a terminal unless NO_COLOR is set
// (no-color.org) or the terminal says it has no colours.
func useColor(stderr io.Writer) bool {
	return isTerminal(stderr) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}
