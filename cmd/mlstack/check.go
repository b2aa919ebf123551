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
		Flags: append(stackFlags(), timeoutFlag(provision.DefaultCheckTimeout, "how long all checks may take")),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return provision.Check(c.Context, provision.CheckOptions{Stack: stackOf(c), Streams: s.std(), Timeout: c.Duration("timeout")})
		},
	}
}
