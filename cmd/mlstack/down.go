package main

import (
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
			&cli.BoolFlag{Name: "any-owner", Usage: "sweep: include the stacks other principals created (default: only yours)"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Down(c.Context, provision.DownOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(),
				Timeout:   c.Duration("timeout"),
				DryRun:    c.Bool("dry-run"),
				Yes:       c.Bool("yes"),
				Expired:   c.Bool("expired"),
				All:       c.Bool("all"),
				OlderThan: c.Duration("older-than"),
				AnyOwner:  c.Bool("any-owner"),
				Confirm:   s.confirm,
			})
		}),
	}
}
