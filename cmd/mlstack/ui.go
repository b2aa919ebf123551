package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func uiCommand(s streams) *cli.Command {
	return &cli.Command{
		Name: "ui",
		Usage: "serve the stack's MLflow UI on http://127.0.0.1:PORT/ until Ctrl-C: a local proxy that trusts only the " +
			"pinned certificate and signs in for you (no certificate warning, no password prompt)",
		Description: "Reads only this machine's env file and pinned certificate; prints the URL on stdout and opens\n" +
			"the browser when there is a display. The URL holds a token, good once, that signs that browser in:\n" +
			"any other client (another user of this machine) gets 403.\n\n" + examples(
			"mlstack ui --stack demo",
			"mlstack ui --stack demo --port 8080 --no-browser"),
		Flags: append(stackFlags(),
			&cli.IntFlag{Name: "port", Usage: "`PORT` on 127.0.0.1 (0: a free one)"},
			&cli.BoolFlag{Name: "no-browser", Usage: "do not open the browser, only print the URL"},
			&cli.BoolFlag{Name: "test-allow-http", Hidden: true, Usage: "accept a plain http:// tracking URI (tests' local servers)"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return provision.UI(c.Context, provision.UIOptions{Stack: stackOf(c), Streams: s.std(),
				Port: c.Int("port"), NoBrowser: c.Bool("no-browser"), AllowHTTP: c.Bool("test-allow-http")})
		},
	}
}
