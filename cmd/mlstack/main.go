// Command mlstack creates and removes a remote MLflow tracking stack on AWS.
// This file only turns flags into a provision.Config; the work is in provision.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mlstack/mlstack/provision"
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
	var remote *provision.RemoteExitError
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

func defaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mlstack")
	}
	return ""
}

// common flags every AWS command takes, accepted after the subcommand.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "stack", EnvVars: []string{"MLSTACK_STACK"}, Usage: "stack name (lowercase letters, digits, hyphens)"},
		&cli.StringFlag{Name: "region", Usage: "AWS region (default: the AWS default chain, e.g. AWS_REGION or the profile)"},
		&cli.StringFlag{Name: "profile", Usage: "AWS shared config profile"},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"MLSTACK_STATE_DIR"}, Value: defaultStateDir(), Usage: "local state (secrets, env file, SSH key)"},
		&cli.DurationFlag{Name: "timeout", Value: provision.DefaultTimeout, Usage: "how long to wait for the instance and the server"},
		&cli.BoolFlag{Name: "api-calls", Hidden: true, Usage: "print the AWS calls made (benchmarks)"},
	}
}

func flagsToConfig(c *cli.Context, stdout, stderr io.Writer) (provision.Config, error) {
	if c.NArg() > 0 {
		return provision.Config{}, &provision.UsageError{Msg: fmt.Sprintf("unexpected argument %q: every option is a flag (see `mlstack %s --help`)", c.Args().First(), c.Command.Name)}
	}
	cfg := configFromFlags(c, stdout, stderr)
	ttl, err := provision.ParseTTL(c.String("ttl"))
	if err != nil {
		return provision.Config{}, err
	}
	cfg.TTL = ttl
	return cfg, nil
}

// configFromFlags reads the flags into a Config; commands that take
// arguments (ssh) call it directly.
func configFromFlags(c *cli.Context, stdout, stderr io.Writer) provision.Config {
	cfg := provision.Config{
		Stack:         c.String("stack"),
		Region:        c.String("region"),
		Profile:       c.String("profile"),
		StateDir:      c.String("state-dir"),
		Timeout:       c.Duration("timeout"),
		AllowCIDRs:    c.StringSlice("allow-cidr"),
		InstanceType:  c.String("instance-type"),
		MLflowVersion: c.String("mlflow-version"),
		NoWait:        c.Bool("no-wait"),
		DryRun:        c.Bool("dry-run"),
		Yes:           c.Bool("yes"),
		SSH:           c.Bool("ssh"),
		HealthURL:     c.String("health-url"),
		Out:           stdout,
		Log:           stderr,
	}
	cfg.Output = c.String("output")
	if c.Bool("api-calls") {
		cfg.Calls = &provision.CallLog{}
	}
	return cfg
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return &provision.UsageError{Msg: err.Error()}
}

// streams is what every command constructor gets: the process's streams.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// confirm asks on a terminal; nil when there is none.
	confirm func(prompt string) (bool, error)
}

// withCalls turns a provision lifecycle function into a cli action.
func (s streams) withCalls(action func(context.Context, provision.Config) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, err := flagsToConfig(c, s.stdout, s.stderr)
		if err != nil {
			return err
		}
		err = action(c.Context, cfg)
		if cfg.Calls != nil {
			fmt.Fprintf(s.stderr, "api-calls: %s\n", cfg.Calls.Summary())
		}
		return err
	}
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
