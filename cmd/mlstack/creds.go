package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func credsCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "creds",
		Usage: "manage the stack's credentials",
		Subcommands: []*cli.Command{{
			Name: "rotate",
			Usage: "new access key and MLflow password in place, env file rewritten; " +
				"the old key is deleted only after the new one works",
			Flags: append(commonFlags(),
				&cli.BoolFlag{Name: "skip-mlflow", Usage: "rotate only the AWS access key"},
				&cli.StringFlag{Name: "tracking-uri", Hidden: true, Usage: "reach the server here (tests)"},
			),
			OnUsageError: usageError,
			Action: s.action(func(c *cli.Context, a provision.AWS) error {
				return provision.RotateCreds(c.Context, provision.RotateOptions{
					Stack: stackOf(c), AWS: a, Streams: s.std(),
					SkipMLflow: c.Bool("skip-mlflow"), TrackingURI: c.String("tracking-uri"),
				})
			}),
		}},
	}
}
