package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func downCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "down",
		Usage: "delete everything the stack owns (safe to re-run)",
		Description: "Says what is lost for good (the runs in the server's database, the artifacts in the bucket) and asks;\n" +
			"without a terminal it needs --yes. Works from a machine that never ran up: it finds the stack in AWS.\n" +
			"With --expired or --all it sweeps the region's stacks instead (only yours unless --any-owner).\n\n" +
			examples(
				"mlstack down --stack demo",
				"mlstack down --stack demo --yes",
				"mlstack down --stack demo --dry-run",
				"mlstack down --stack demo --keep-data --yes",
				"mlstack down --expired --yes",
				"mlstack down --all --older-than 2d --dry-run"),
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "yes", Usage: "delete without asking (required without a terminal)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be deleted; change nothing"},
			&cli.BoolFlag{Name: "keep-data", Usage: "keep the bucket (artifacts and the server's backups): a later up of the stack resumes with every run; the instance is stopped first, so it backs up its last writes"},
			&cli.BoolFlag{Name: "expired", Usage: "sweep: delete every stack in the region whose TTL has passed"},
			&cli.BoolFlag{Name: "all", Usage: "sweep: delete every stack in the region (with --older-than: only older ones)"},
			durationFlag("older-than", 0, "sweep: only stacks created more than this long ago"),
			&cli.BoolFlag{Name: "any-owner", Usage: "sweep: include the stacks other principals created (without it: only yours)"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			timeout, err := durationOf(c, "timeout")
			if err != nil {
				return err
			}
			olderThan, err := durationOf(c, "older-than")
			if err != nil {
				return err
			}
			return provision.Down(c.Context, provision.DownOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(),
				Timeout:   timeout,
				DryRun:    c.Bool("dry-run"),
				Yes:       c.Bool("yes"),
				KeepData:  c.Bool("keep-data"),
				Expired:   c.Bool("expired"),
				All:       c.Bool("all"),
				OlderThan: olderThan,
				AnyOwner:  c.Bool("any-owner"),
				Confirm:   s.confirm,
			})
		}),
	}
}
