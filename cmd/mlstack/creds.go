package main

import (
	"context"

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
			Action: func(c *cli.Context) error {
				o := provision.RotateOptions{TrackingURI: c.String("tracking-uri"), SkipMLflow: c.Bool("skip-mlflow")}
				return s.withCalls(func(ctx context.Context, cfg provision.Config) error {
					return provision.RotateCreds(ctx, cfg, o)
				})(c)
			},
		}},
	}
}
