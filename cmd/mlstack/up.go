package main

import (
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func upCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "create or converge the stack, wait for the server, write the env file",
		Flags: append(commonFlags(),
			&cli.StringSliceFlag{Name: "allow-cidr", Usage: "CIDR allowed to reach port 5000 (repeatable; default: your public IP/32)"},
			&cli.StringFlag{Name: "instance-type", Value: provision.DefaultInstanceType, Usage: "EC2 instance type"},
			&cli.StringFlag{Name: "mlflow-version", Value: cloudinit.DefaultMLflowVersion, Usage: "exact MLflow version to install"},
			&cli.BoolFlag{Name: "ssh", Usage: "open tcp 22 to the allowed CIDRs (for `mlstack ssh` and `logs`); without it, up closes the port"},
			&cli.StringFlag{Name: "ttl", Usage: "tag the stack to expire after this long (90m, 4h, 2d) for `down --expired`; on a live stack, moves the expiry"},
			&cli.StringFlag{Name: "output", Value: "table", Usage: "table or json (json: the stack's details on stdout)"},
			&cli.BoolFlag{Name: "no-wait", Usage: "do not wait for the server's /health"},
			&cli.BoolFlag{Name: "yes", Usage: "do not ask (opening the server wider than a /24 asks)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan; change nothing"},
			&cli.StringFlag{Name: "health-url", Hidden: true, Usage: "poll this URL instead of the server's /health (tests)"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			return provision.Up(c.Context, provision.UpOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(),
				AllowCIDRs:    c.StringSlice("allow-cidr"),
				InstanceType:  explicit(c, "instance-type"), // only the default may fall back
				MLflowVersion: c.String("mlflow-version"),
				TTL:           c.String("ttl"),
				Output:        c.String("output"),
				Timeout:       c.Duration("timeout"),
				SSH:           c.Bool("ssh"),
				NoWait:        c.Bool("no-wait"),
				DryRun:        c.Bool("dry-run"),
				HealthURL:     c.String("health-url"),
				Yes:           c.Bool("yes"),
				Confirm:       s.confirm,
			})
		}),
	}
}
