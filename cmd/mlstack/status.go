package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func statusCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the stack: server health, expiry, who may reach it, owner, cost, resources",
		Description: "Asks the server's /health once. A stack that does not exist exits 1.\n\n" +
			examples(
				"mlstack status --stack demo",
				"mlstack status --stack demo --output json"),
		Flags: append(commonFlags(), outputFlag()),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Status(c.Context, provision.StatusOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(), Output: c.String("output"),
			})
		}),
	}
}
