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
)

// Exit codes, documented in the README.
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
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	return report(ctx, err, stderr, args)
}

func report(ctx context.Context, err error, stderr io.Writer, args []string) int {
	if err == nil {
		return exitOK
	}
	var remote *server.RemoteExitError
	if errors.As(err, &remote) {
		// `mlstack ssh -- cmd` exits as cmd did, like ssh(1); cmd's own
		// output said why.
		return remote.Status
	}
	var left *provision.LeftBehindError
	switch {
	case provision.IsUsage(err):
		fmt.Fprintf(stderr, "mlstack: %v\n", err)
		return exitUsage
	case errors.As(err, &left):
		fmt.Fprintf(stderr, "mlstack: %v\n", err)
		return exitLeftBehind
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "mlstack: interrupted: %v\nlocal files are whole (written atomically); run `%s` again to finish, "+
			"or `mlstack down --stack NAME --yes` to remove what exists\n", err, strings.Join(append([]string{"mlstack"}, args[1:]...), " "))
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "mlstack: %v\n", err)
		return exitFailure
	}
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return &provision.UsageError{Msg: err.Error()}
}

// commands lists the subcommands; each lives in its own file.
var commands = []func(streams) *cli.Command{
	upCommand,
	downCommand,
	envCommand,
	statusCommand,
	lsCommand,
	credsCommand,
	checkCommand,
	sshCommand,
	logsCommand,
	uiCommand,
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	s := streams{stdin: stdin, stdout: stdout, stderr: stderr, confirm: terminalConfirm(stdin, stderr)}
	var cmds []*cli.Command
	for _, mk := range commands {
		c := mk(s)
		c.OnUsageError = usageError
		cmds = append(cmds, c)
	}
	return &cli.App{
		Name:      "mlstack",
		Usage:     "a remote MLflow tracking stack on AWS in one command",
		Version:   provision.Version,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are reported by run with one line and an exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &provision.UsageError{Msg: fmt.Sprintf("unknown command %q (see `mlstack --help`)", c.Args().First())}
			}
			_ = cli.ShowAppHelp(c)
			return &provision.UsageError{Msg: "missing command"}
		},
		Commands: cmds,
	}
}

// terminalConfirm asks on stderr when stdin is a terminal; without one it
// returns nil, so commands refuse instead of prompting.
func terminalConfirm(stdin io.Reader, stderr io.Writer) func(string) (bool, error) {
	f, ok := stdin.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
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
