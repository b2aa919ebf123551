package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func usersCommand(s streams) *cli.Command {
	named := func(name, usage string, run func(context.Context, provision.UsersOptions) error) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "NAME",
			Description:  examples("mlstack users " + name + " alice --stack demo"),
			Flags:        commonFlags(),
			OnUsageError: usageError,
			Action:       s.usersAction(1, run),
		}
	}
	return &cli.Command{
		Name:  "users",
		Usage: "the stack's MLflow users (one login per person; the admin login stays in mlstack's state)",
		Description: examples(
			"mlstack users add alice --stack demo",
			"mlstack users list --stack demo",
			"mlstack env --stack demo --user alice > alice.envrc",
			"mlstack users passwd alice --stack demo",
			"mlstack users remove alice --stack demo"),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c.Args().First(), c.Command.Subcommands, "mlstack users")
			}
			_ = cli.ShowSubcommandHelp(c)
			return &provision.UsageError{Msg: "missing command: mlstack users add|list|remove|passwd"}
		},
		Subcommands: []*cli.Command{
			named("add", "make a non-admin MLflow user with a generated password, kept in the state (`env --user NAME` prints it)", provision.AddUser),
			{
				Name: "list", Usage: "the server's users, their role, and whether this machine holds their login",
				Description: examples("mlstack users list --stack demo"),
				Flags:       commonFlags(), OnUsageError: usageError, Action: s.usersAction(0, provision.ListUsers),
			},
			removeCommand(named("remove", "delete an MLflow user on the server and its login here", provision.RemoveUser)),
			named("passwd", "give an MLflow user a new generated password (the env file is rewritten if it signs in as them)", provision.SetUserPassword),
		},
	}
}

// usersAction takes exactly want positional arguments (the user's name).
func (s streams) usersAction(want int, run func(context.Context, provision.UsersOptions) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if args := c.Args().Slice(); want == 1 && len(args) > 1 && !strings.HasPrefix(args[0], "-") && strings.HasPrefix(args[1], "-") {
			// `users add [flags] alice --stack s`: the flag parser stopped
			// at NAME; parse again with the flags it read, the rest, NAME.
			again := []string{"mlstack", "users", c.Command.Name}
			for _, f := range c.Command.Flags {
				name := f.Names()[0]
				switch _, isBool := f.(*cli.BoolFlag); {
				case !c.IsSet(name):
				case isBool: // --rotate-key takes no value
					again = append(again, fmt.Sprintf("--%s=%t", name, c.Bool(name)))
				default:
					again = append(again, "--"+name, c.String(name))
				}
			}
			return c.App.RunContext(c.Context, append(append(again, args[1:]...), args[0]))
		}
		if c.NArg() != want {
			what := "no argument"
			if want == 1 {
				what = "one argument, the user's NAME"
			}
			return &provision.UsageError{Msg: fmt.Sprintf("`mlstack users %s` takes %s ", c.Command.Name, what)}
		}
		a := awsOf(c)
		err := run(c.Context, provision.UsersOptions{
			Stack: stackOf(c), AWS: a, Streams: s.std(), Name: c.Args().First(), RotateKey: c.Bool("rotate-key"),
		})
		if a.Calls != nil {
			fmt.Fprintf(s.stderr, "api-calls: %s\n", a.Calls.Summary())
		}
		return err
	}
}

// removeCommand adds --rotate-key to users remove: with direct artifacts
// the removed person still holds the stack's shared AWS key.
func removeCommand(c *cli.Command) *cli.Command {
	c.Flags = append(c.Flags, &cli.BoolFlag{Name: "rotate-key",
		Usage: "with direct artifacts, also rotate the stack's shared AWS key (as creds rotate --skip-mlflow does), which the removed user holds too"})
	return c
}
