package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func logsCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "logs",
		Usage: "the bootstrap log and the server's journal (over SSH; without SSH, the EC2 console output)",
		Flags: append(commonFlags(), append(remoteFlags(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until interrupted"},
			&cli.StringFlag{Name: "bootstrap-log", Hidden: true, Usage: "remote bootstrap log path (tests)"},
			&cli.StringFlag{Name: "journal-command", Hidden: true, Usage: "remote command printing the server journal (tests)"},
		)...),
		Action: func(c *cli.Context) error {
			cfg, err := flagsToConfig(c, s.stdout, s.stderr)
			if err != nil {
				return err
			}
			return provision.Logs(c.Context, cfg, provision.LogsOptions{
				Remote:         remoteFromFlags(c),
				Follow:         c.Bool("follow"),
				BootstrapLog:   c.String("bootstrap-log"),
				JournalCommand: c.String("journal-command"),
			})
		},
	}
}
