package main

import (
	"fmt"

	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func policyCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:      "policy",
		Usage:     "print the least-privilege IAM policy for whoever runs mlstack (operator) or its sweeps (sweeper)",
		ArgsUsage: "operator|sweeper",
		Description: "operator: every command (up, down, status, env, users, check, ui, ssh, logs, creds, backup, restore,\n" +
			"upgrade); sweeper: only `down --expired` (deletes, never makes). Scoped to the names and tags mlstack\n" +
			"gives its resources; needs no AWS access. Give the file to `aws iam create-policy --policy-document\n" +
			"file://operator.json` (see docs/policy.md).\n\n" + examples(
			"mlstack policy operator > operator.json",
			"mlstack policy sweeper > sweeper.json"),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return &provision.UsageError{Msg: "policy takes one argument, operator or sweeper (see `mlstack policy --help`)"}
			}
			doc, err := provision.OperatorPolicy(c.Args().First())
			if err != nil {
				return err
			}
			if _, err := s.stdout.Write(doc); err != nil {
				return fmt.Errorf("writing the policy: %w", err)
			}
			return nil
		},
	}
}
