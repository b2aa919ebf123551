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
		Description: "Prints the tracking URI on stdout (--output json: the stack); progress goes to stderr.\n" +
			"Re-running it on a complete stack changes nothing; on a partial or drifted one it repairs what differs.\n\n" +
			examples(
				"mlstack up --stack demo --allow-cidr 198.51.100.7/32",
				"mlstack up --stack demo --region eu-west-3 --ttl 2d --ssh",
				"mlstack up --stack team --artifacts proxied",
				"mlstack up --stack team --db postgres",
				"mlstack up --stack demo --dry-run",
				"mlstack up --stack ci --allow-cidr 203.0.113.0/24 --no-wait --output json"),
		Flags: append(commonFlags(),
			&cli.StringSliceFlag{Name: "allow-cidr", Usage: "`CIDR` allowed to reach port 5000 (repeatable; default: your public IP/32)"},
			&cli.StringFlag{Name: "instance-type", Value: provision.DefaultInstanceType, Usage: "EC2 instance `TYPE`"},
			&cli.StringFlag{Name: "mlflow-version", Value: cloudinit.DefaultMLflowVersion, Usage: "exact MLflow `VERSION` to install (checked on PyPI)"},
			&cli.StringFlag{Name: "user", Usage: "the MLflow `USER` (not an admin) up makes for you and the env file signs in as (default: your login name)"},
			&cli.StringFlag{Name: "artifacts", Usage: "`MODE`: proxied (through the server, no AWS key on clients) or direct (clients write to S3); default: the stack's, direct for a new one; a live stack switches by a reboot"},
			&cli.StringFlag{Name: "db", Usage: "`ENGINE` of the tracking data: sqlite (on the instance, backed up to the bucket) or postgres (Amazon RDS, made alongside: up takes 5 to 15 minutes more); default: the stack's, sqlite for a new one"},
			&cli.StringFlag{Name: "db-class", Usage: "RDS instance `CLASS` for --db postgres (default: the smallest burstable one RDS offers in the region, db.t4g.micro or db.t3.micro)"},
			&cli.BoolFlag{Name: "ssh", Usage: "open tcp 22 to the allowed CIDRs (for mlstack ssh and logs); without it, up closes the port"},
			durationFlag("ttl", 0, "tag the stack to expire after this long, for down --expired; on a live stack, moves the expiry"),
			&cli.StringFlag{Name: "output", Value: "table", Usage: "`FORMAT`: table (the tracking URI) or json (the stack schema in docs/commands.md)"},
			&cli.BoolFlag{Name: "no-wait", Usage: "do not wait for the server's /health"},
			&cli.BoolFlag{Name: "yes", Usage: "do not ask (opening the server wider than a /24 asks)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan; change nothing"},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			timeout, err := durationOf(c, "timeout")
			if err != nil {
				return err
			}
			return provision.Up(c.Context, provision.UpOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(),
				AllowCIDRs:    c.StringSlice("allow-cidr"),
				InstanceType:  explicit(c, "instance-type"),  // only the default may fall back
				MLflowVersion: explicit(c, "mlflow-version"), // drift is what was asked for
				TTL:           c.String("ttl"),
				Output:        c.String("output"),
				Timeout:       timeout,
				SSH:           c.Bool("ssh"),
				User:          c.String("user"),
				Artifacts:     c.String("artifacts"),
				Database:      c.String("db"),
				DBClass:       c.String("db-class"),
				NoWait:        c.Bool("no-wait"),
				DryRun:        c.Bool("dry-run"),
				Yes:           c.Bool("yes"),
				Confirm:       s.confirm,
			})
		}),
	}
}
