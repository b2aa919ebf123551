package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func envCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "print the stack's variables as shell export lines (for >> .envrc)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "stack", EnvVars: []string{"MLSTACK_STACK"}, Usage: "stack name"},
			&cli.StringFlag{Name: "state-dir", EnvVars: []string{"MLSTACK_STATE_DIR"}, Value: defaultStateDir(), Usage: "local state"},
			&cli.StringFlag{Name: "format", Value: "shell", Usage: "shell (export lines), dotenv, json, or github ($GITHUB_ENV lines + ::add-mask:: for secrets; with $GITHUB_ENV set, appends there)"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := flagsToConfig(c, s.stdout, s.stderr)
			if err != nil {
				return err
			}
			return provision.Env(c.Context, cfg, c.String("format"))
		},
	}
}
