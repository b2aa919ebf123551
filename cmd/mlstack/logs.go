package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/mlstack/mlstack/provision/server"
	"github.com/urfave/cli/v2"
)

func logsCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "logs",
		Usage: "the bootstrap log and the server's journal (over SSH; without SSH, the EC2 console output)",
		Description: examples(
			"mlstack logs --stack demo",
			"mlstack logs --stack demo --follow"),
		Flags: append(commonFlags(), append(remoteFlags(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until interrupted"},
			&cli.StringFlag{Name: "bootstrap-log", Hidden: true, Usage: "remote bootstrap log path (tests)"},
			&cli.StringFlag{Name: "journal-command", Hidden: true, Usage: "remote command printing the server journal (tests)"},
		)...),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Logs(c.Context, provision.LogsOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(), Remote: remoteOf(c),
				Logs: server.LogOptions{
					Follow:         c.Bool("follow"),
					BootstrapLog:   c.String("bootstrap-log"),
					JournalCommand: c.String("journal-command"),
				},
			})
		}),
	}
}
