package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

// Flag groups that several commands share, each with the reader that turns
// it into the matching provision option group.

func defaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mlstack")
	}
	return ""
}

// stackFlags name a stack and its local files: --stack, --state-dir.
func stackFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "stack", EnvVars: []string{"MLSTACK_STACK"}, Usage: "stack name (lowercase letters, digits, hyphens)"},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"MLSTACK_STATE_DIR"}, Value: defaultStateDir(), Usage: "local state (secrets, env file, SSH key)"},
	}
}

func stackOf(c *cli.Context) provision.Stack {
	return provision.Stack{Name: c.String("stack"), StateDir: c.String("state-dir")}
}

// awsFlags choose the account and region: --region, --profile (and the
// hidden --api-calls of the benchmarks).
func awsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "region", Usage: "AWS region (default: the AWS default chain, e.g. AWS_REGION or the profile)"},
		&cli.StringFlag{Name: "profile", Usage: "AWS shared config profile"},
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

// timeoutFlag is --timeout with the command's default.
func timeoutFlag(def time.Duration, usage string) cli.Flag {
	return &cli.DurationFlag{Name: "timeout", Value: def, Usage: usage}
}

// commonFlags are what every command on one stack in AWS takes.
func commonFlags() []cli.Flag {
	return append(append(stackFlags(), awsFlags()...),
		timeoutFlag(provision.DefaultTimeout, "how long to wait for the instance and the server"))
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Value: "table", Usage: "table or json"}
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
		return &provision.UsageError{Msg: fmt.Sprintf("unexpected argument %q: every option is a flag (see `mlstack %s --help`)", c.Args().First(), c.Command.Name)}
	}
	return nil
}

// streams is what every command constructor gets: the process's streams.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// confirm asks on a terminal; nil when there is none.
	confirm func(prompt string) (bool, error)
}

func (s streams) std() provision.Streams { return provision.Streams{Out: s.stdout, Log: s.stderr} }

// action wraps a command's work: no positional arguments, and the AWS
// calls printed afterwards when --api-calls asked for them.
func (s streams) action(run func(c *cli.Context, a provision.AWS) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := noArgs(c); err != nil {
			return err
		}
		a := awsOf(c)
		err := run(c, a)
		if a.Calls != nil {
			fmt.Fprintf(s.stderr, "api-calls: %s\n", a.Calls.Summary())
		}
		return err
	}
}
