package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func statusCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show what the stack owns, its state and tracking URI",
		Flags: append(commonFlags(), outputFlag()),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Status(c.Context, provision.StatusOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(), Output: c.String("output"),
			})
		}),
	}
}
