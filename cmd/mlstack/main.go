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

	"github.com/mlstack/mlstack/cloudinit"
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
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	return report(ctx, err, stderr)
}

func report(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
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
		fmt.Fprintf(stderr, "mlstack: interrupted (%v)\nnothing is half-written locally; run the same command again to finish, or `mlstack down` to remove what exists\n", err)
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
		Out:           stdout,
		Log:           stderr,
	}
	if c.Bool("api-calls") {
		cfg.Calls = &provision.CallLog{}
	}
	return cfg, nil
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return &provision.UsageError{Msg: err.Error()}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	withCalls := func(action func(context.Context, provision.Config) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			cfg, err := flagsToConfig(c, stdout, stderr)
			if err != nil {
				return err
			}
			err = action(c.Context, cfg)
			if cfg.Calls != nil {
				fmt.Fprintf(stderr, "api-calls: %s\n", cfg.Calls.Summary())
			}
			return err
		}
	}
	confirm := terminalConfirm(stdin, stderr)
	upFlags := append(commonFlags(),
		&cli.StringSliceFlag{Name: "allow-cidr", Usage: "CIDR allowed to reach port 5000 (repeatable; default: your public IP/32)"},
		&cli.StringFlag{Name: "instance-type", Value: provision.DefaultInstanceType, Usage: "EC2 instance type"},
		&cli.StringFlag{Name: "mlflow-version", Value: cloudinit.DefaultMLflowVersion, Usage: "exact MLflow version to install"},
		&cli.BoolFlag{Name: "no-wait", Usage: "do not wait for the server's /health"},
		&cli.BoolFlag{Name: "yes", Usage: "do not ask"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print the plan; change nothing"},
	)
	downFlags := append(commonFlags(),
		&cli.BoolFlag{Name: "yes", Usage: "delete without asking (required without a terminal)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print what would be deleted; change nothing"},
	)
	envFlags := []cli.Flag{
		&cli.StringFlag{Name: "stack", EnvVars: []string{"MLSTACK_STACK"}, Usage: "stack name"},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"MLSTACK_STATE_DIR"}, Value: defaultStateDir(), Usage: "local state"},
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
		Commands: []*cli.Command{
			{
				Name: "up", Usage: "create or converge the stack, wait for the server, write the env file",
				Flags: upFlags, OnUsageError: usageError,
				Action: withCalls(provision.Up),
			},
			{
				Name: "down", Usage: "delete everything the stack owns (safe to re-run)",
				Flags: downFlags, OnUsageError: usageError,
				Action: withCalls(func(ctx context.Context, cfg provision.Config) error {
					return provision.Down(ctx, cfg, confirm)
				}),
			},
			{
				Name: "env", Usage: "print the stack's variables as shell export lines (for >> .envrc)",
				Flags: envFlags, OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					cfg, err := flagsToConfig(c, stdout, stderr)
					if err != nil {
						return err
					}
					return provision.Env(c.Context, cfg)
				},
			},
			{
				Name: "status", Usage: "show what the stack owns, its state and tracking URI",
				Flags: commonFlags(), OnUsageError: usageError,
				Action: withCalls(provision.Status),
			},
		},
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
