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
			&cli.BoolFlag{Name: "expired", Usage: "sweep: delete every stack in the region whose TTL has passed"},
			&cli.BoolFlag{Name: "all", Usage: "sweep: delete every stack in the region (with --older-than: only older ones)"},
			&cli.DurationFlag{Name: "older-than", Usage: "sweep: only stacks created more than this long ago (e.g. 2h)"},
		),
		Action: func(c *cli.Context) error {
			f := provision.SweepFilter{Expired: c.Bool("expired"), All: c.Bool("all"), OlderThan: c.Duration("older-than")}
			if !f.Expired && !f.All {
				if f.OlderThan != 0 {
					return &provision.UsageError{Msg: "--older-than goes with --all or --expired"}
				}
				return s.withCalls(func(ctx context.Context, cfg provision.Config) error {
					return provision.Down(ctx, cfg, s.confirm)
				})(c)
			}
			if f.OlderThan < 0 {
				return &provision.UsageError{Msg: "--older-than must be positive"}
			}
			return s.withCalls(func(ctx context.Context, cfg provision.Config) error {
				return provision.Sweep(ctx, cfg, f, s.confirm)
			})(c)
		},
	}
}
