package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func lsCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list every stack in the region (or all regions): created, expires, instance state, tracking URI",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "region", Usage: "AWS region (default: the AWS default chain)"},
			&cli.StringFlag{Name: "profile", Usage: "AWS shared config profile"},
			&cli.BoolFlag{Name: "all-regions", Usage: "every region enabled for the account"},
			&cli.StringFlag{Name: "output", Value: "table", Usage: "table or json"},
			&cli.BoolFlag{Name: "api-calls", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			cfg, err := flagsToConfig(c, s.stdout, s.stderr)
			if err != nil {
				return err
			}
			return provision.Ls(c.Context, cfg, c.Bool("all-regions"))
		},
	}
}
