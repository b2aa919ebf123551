package main

import (
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func upgradeCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "upgrade",
		Usage: "move the stack's server to an MLflow version and this mlstack's bootstrap, keeping its data",
		Description: "An up that keeps the stack as it is (allowed CIDRs, SSH, artifacts mode) and asks for --mlflow-version\n" +
			"(default: the locked one). When the server differs, its instance is replaced: stopped (it backs up), a new one\n" +
			"restores the backup, and the old one goes once the new server answers. Asks first; without a terminal it needs --yes.\n\n" +
			examples(
				"mlstack upgrade --stack demo",
				"mlstack upgrade --stack demo --mlflow-version "+cloudinit.DefaultMLflowVersion+" --yes"),
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "mlflow-version", Value: cloudinit.DefaultMLflowVersion, Usage: "exact MLflow `VERSION` (checked on PyPI)"},
			&cli.BoolFlag{Name: "yes", Usage: "replace without asking (required without a terminal)"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			timeout, err := durationOf(c, "timeout")
			if err != nil {
				return err
			}
			return provision.Upgrade(c.Context, provision.UpgradeOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(), MLflowVersion: c.String("mlflow-version"),
				Timeout: timeout, Yes: c.Bool("yes"), Confirm: s.confirm,
			})
		}),
	}
}
