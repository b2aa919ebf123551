package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func credsCommand(s streams) *cli.Command {
	rotate := &cli.Command{
		Name: "rotate",
		Usage: "new access key and MLflow password in place, env file rewritten; " +
			"the old key is deleted only after the new one works",
		Description: "From an admin identity. On a machine without the stack's local state it issues secrets for this\n" +
			"machine (the old ones stop working).\n\n" +
			examples(
				"mlstack creds rotate --stack demo",
				"mlstack creds rotate --stack demo --skip-mlflow",
				"mlstack creds rotate --stack demo --user alice"),
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "skip-mlflow", Usage: "rotate only the AWS access key"},
			&cli.StringFlag{Name: "user", Usage: "instead: a new password for this one MLflow `USER` (as users passwd); the AWS key and other logins stay"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			if c.IsSet("user") {
				if c.Bool("skip-mlflow") {
					return &provision.UsageError{Msg: "--user rotates one MLflow login and never the AWS key: drop --skip-mlflow"}
				}
				return provision.SetUserPassword(c.Context, provision.UsersOptions{
					Stack: stackOf(c), AWS: a, Streams: s.std(), Name: c.String("user"),
				})
			}
			return provision.RotateCreds(c.Context, provision.RotateOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(),
				SkipMLflow: c.Bool("skip-mlflow"),
			})
		}),
	}
	return &cli.Command{
		Name:        "creds",
		Usage:       "manage the stack's credentials",
		Description: examples("mlstack creds rotate --stack demo"),
		Subcommands: []*cli.Command{rotate},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c.Args().First(), c.Command.Subcommands, "mlstack creds")
			}
			_ = cli.ShowSubcommandHelp(c)
			return &provision.UsageError{Msg: "missing command: mlstack creds rotate"}
		},
	}
}
