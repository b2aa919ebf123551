package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func envCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "print the stack's variables as shell export lines (for >> .envrc)",
		Flags: append(stackFlags(),
			&cli.StringFlag{Name: "format", Value: "shell", Usage: "shell (export lines), dotenv, json, or github ($GITHUB_ENV lines + ::add-mask:: for secrets; with $GITHUB_ENV set, appends there)"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return provision.Env(c.Context, provision.EnvOptions{Stack: stackOf(c), Streams: s.std(), Format: c.String("format")})
		},
	}
}
