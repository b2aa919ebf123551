package main

import (
	"context"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func downCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "down",
		Usage: "delete everything the stack owns (safe to re-run)",
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "yes", Usage: "delete without asking (required without a terminal)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be deleted; change nothing"},
		),
		Action: s.withCalls(func(ctx context.Context, cfg provision.Config) error {
			return provision.Down(ctx, cfg, s.confirm)
		}),
	}
}
