package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func checkCommand(s streams) *cli.Command {
	return &cli.Command{
		Name: "check",
		Usage: "smoke-test a stack from this machine with its env file's variables: " +
			"MLflow API (health, auth, experiment, run, metric; cleaned up) and S3 put/get/delete",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "stack", EnvVars: []string{"MLSTACK_STACK"}, Usage: "stack name"},
			&cli.StringFlag{Name: "state-dir", EnvVars: []string{"MLSTACK_STATE_DIR"}, Value: defaultStateDir(), Usage: "local state"},
			&cli.DurationFlag{Name: "timeout", Value: provision.DefaultCheckTimeout, Usage: "how long all checks may take"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := flagsToConfig(c, s.stdout, s.stderr)
			if err != nil {
				return err
			}
			return provision.Check(c.Context, cfg)
		},
	}
}
