package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func lsCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list every stack in the region (or all regions): owner, created, expires, instance state, tracking URI",
		Description: "No stacks: says so on stderr (stdout stays empty, or [] with --output json).\n\n" +
			examples(
				"mlstack ls",
				"mlstack ls --all-regions --output json"),
		Flags: append(awsFlags(),
			&cli.BoolFlag{Name: "all-regions", Usage: "every region enabled for the account"},
			outputFlag(),
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Ls(c.Context, provision.LsOptions{
				AWS: a, Streams: s.std(), AllRegions: c.Bool("all-regions"), Output: c.String("output"),
			})
		}),
	}
}
