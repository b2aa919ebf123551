package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

// Flag groups that several commands share, each with the reader that turns
// it into the matching provision option group. A backticked word in a
// flag's usage is its placeholder in --help (`--stack NAME`).

// stackFlags name a stack and its local files: --stack, --state-dir.
func stackFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "stack", EnvVars: []string{"MLSTACK_STACK"}, Usage: "stack `NAME` (lowercase letters, digits, hyphens)"},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"MLSTACK_STATE_DIR"}, Value: provision.DefaultStateDir(),
			Usage: "local state `DIR` (secrets, env file, SSH key)"},
	}
}

func stackOf(c *cli.Context) provision.Stack {
	return provision.Stack{Name: c.String("stack"), StateDir: c.String("state-dir")}
}

// awsFlags choose the account and region: --region, --profile (and the
// hidden --api-calls of the benchmarks).
func awsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "region", Usage: "AWS `REGION` (default: the AWS default chain, e.g. AWS_REGION or the profile)"},
		&cli.StringFlag{Name: "profile", Usage: "AWS shared config `PROFILE`"},
		&cli.BoolFlag{Name: "api-calls", Hidden: true, Usage: "print the AWS calls made (benchmarks)"},
	}
}

func awsOf(c *cli.Context) provision.AWS {
	a := provision.AWS{Region: c.String("region"), Profile: c.String("profile")}
	if c.Bool("api-calls") {
		a.Calls = &provision.CallLog{}
	}
	return a
}

// durationFlag takes 90m, 4h or 2d; durationOf reads it, echoing what was
// typed when it is wrong.
func durationFlag(name string, def time.Duration, usage string) cli.Flag {
	f := &cli.StringFlag{Name: name, Usage: usage + " (`DURATION`: 90m, 4h, 2d)"}
	if def > 0 {
		f.Value = provision.FormatDuration(def)
	}
	return f
}

func durationOf(c *cli.Context, name string) (time.Duration, error) {
	if c.String(name) == "" {
		return 0, nil
	}
	return provision.ParseDuration("--"+name, c.String(name))
}

// timeoutFlag is --timeout with the command's default.
func timeoutFlag(def time.Duration, usage string) cli.Flag {
	return durationFlag("timeout", def, usage)
}

// commonFlags are what every command on one stack in AWS takes.
func commonFlags() []cli.Flag {
	return append(append(stackFlags(), awsFlags()...),
		timeoutFlag(provision.DefaultTimeout, "how long to wait for the instance and the server"))
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Value: "table", Usage: "`FORMAT`: table or json (the stack schema in docs/commands.md)"}
}

// explicit is the flag's value when the user gave it, else "": provision
// then applies (and may adapt) its default.
func explicit(c *cli.Context, name string) string {
	if !c.IsSet(name) {
		return ""
	}
	return c.String(name)
}

// noArgs refuses positional arguments: every option is a flag.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return &provision.UsageError{Msg: fmt.Sprintf("unexpected argument %q: every option is a flag (see `mlstack %s --help`)", c.Args().First(), c.Command.FullName())}
	}
	return nil
}

// examples is the help text's list of commands to copy; the tests parse
// every one of them.
func examples(lines ...string) string {
	return "Examples:\n  " + strings.Join(lines, "\n  ")
}

// streams is what every command constructor gets: the process's streams
// and what the terminal allows.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// confirm asks on a terminal; nil when there is none.
	confirm func(prompt string) (bool, error)
	term    bool // stderr is a terminal: live progress lines
	color   bool
	// ran is the stack and AWS flags of the command that runs, for the
	// interrupt hint.
	ran *ranWith
}

func newStreams(stdin io.Reader, stdout, stderr io.Writer) streams {
	return streams{stdin: stdin, stdout: stdout, stderr: stderr, confirm: terminalConfirm(stdin, stderr),
		term: isTerminal(stderr), color: useColor(stderr), ran: &ranWith{}}
}

func (s streams) std() provision.Streams {
	return provision.Streams{Out: s.stdout, Log: s.stderr, LogTerminal: s.term, Color: s.color}
}

// ranWith is what an interrupted command was working on.
type ranWith struct {
	verb  string
	stack provision.Stack
	aws   provision.AWS
}

// downHint is the removal an interrupted up leaves to the user.
func (r *ranWith) downHint() string {
	if r.verb != "up" || r.stack.Name == "" {
		return ""
	}
	return fmt.Sprintf(", or `%s` to remove what exists", provision.Hint(r.stack, r.aws, "down", "--yes"))
}

// action wraps a command's work: no positional arguments, and the AWS
// calls printed afterwards when --api-calls asked for them.
func (s streams) action(run func(c *cli.Context, a provision.AWS) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := noArgs(c); err != nil {
			return err
		}
		a := awsOf(c)
		*s.ran = ranWith{verb: c.Command.Name, stack: stackOf(c), aws: a}
		err := run(c, a)
		if a.Calls != nil {
			fmt.Fprintf(s.stderr, "api-calls: %s\n", a.Calls.Summary())
		}
		return err
	}
}
