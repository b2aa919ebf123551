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
		Description: "One ✓/✗ line per check on stdout; exit 1 on any ✗.\n\n" + examples("mlstack check --stack demo"),
		Flags:       append(stackFlags(), timeoutFlag(provision.DefaultCheckTimeout, "how long all checks may take")),
		Action: s.action(func(c *cli.Context, _ provision.AWS) error {
			timeout, err := durationOf(c, "timeout")
			if err != nil {
				return err
			}
			return provision.Check(c.Context, provision.CheckOptions{Stack: stackOf(c), Streams: s.std(), Timeout: timeout})
		}),
	}
}
