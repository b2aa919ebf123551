package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func restoreCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "start the stack's server again from a chosen backup of its tracking data",
		Description: "Replaces the instance: the old one stops (its server backs up what it has, so nothing is lost),\n" +
			"the chosen backup is copied to the newest place in the bucket, a new instance restores it before its server\n" +
			"starts, and the old one goes once the new server answers. `mlstack status` shows the newest backup.\n" +
			"Asks first; without a terminal it needs --yes.\n\n" +
			examples(
				"mlstack restore --stack demo --from latest",
				"mlstack restore --stack demo --from 20261127T120000.000001Z --yes"),
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "from", Usage: "the `BACKUP`: its folder name under backups/ in the stack bucket, or latest"},
			&cli.BoolFlag{Name: "yes", Usage: "replace without asking (required without a terminal)"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			timeout, err := durationOf(c, "timeout")
			if err != nil {
				return err
			}
			return provision.Restore(c.Context, provision.RestoreOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(), From: c.String("from"),
				Timeout: timeout, Yes: c.Bool("yes"), Confirm: s.confirm,
			})
		}),
	}
}
