package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func statusCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "show what the stack owns, its state and tracking URI",
		Flags:  append(commonFlags(), &cli.StringFlag{Name: "output", Value: "table", Usage: "table or json"}),
		Action: s.withCalls(provision.Status),
	}
}
