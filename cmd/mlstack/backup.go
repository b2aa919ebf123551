package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func backupCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "back up the tracking data now and print where the backup is (over SSH: needs up --ssh)",
		Description: "Prints the backup's place in the stack bucket on stdout. The server also backs up by itself within\n" +
			"5 minutes of a change and at every stop; `mlstack status` shows the newest, `mlstack restore` goes back to one.\n\n" +
			examples("mlstack backup --stack demo"),
		Flags: append(commonFlags(), append(remoteFlags(),
			&cli.StringFlag{Name: "backup-command", Hidden: true, Usage: "remote command that backs up (tests)"})...),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Backup(c.Context, provision.BackupOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(), Remote: remoteOf(c), Command: c.String("backup-command"),
			})
		}),
	}
}
