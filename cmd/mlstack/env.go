package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/urfave/cli/v2"
)

func envCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "print the stack's variables as shell export lines (for .envrc)",
		Description: "Reads the env file in the state directory (mode 0600); works offline. --region and --profile\n" +
			"are used only when this machine has nothing of the stack, to tell whether it exists.\n\n" +
			examples(
				`eval "$(mlstack env --stack demo)"     # in .envrc: the secrets stay in the state file`,
				"mlstack env --stack demo >> .envrc",
				"mlstack env --stack demo --format dotenv > .env",
				"mlstack env --stack demo --format github   # in a GitHub Actions step"),
		Flags: append(append(stackFlags(), awsFlags()...),
			&cli.StringFlag{Name: "user", Usage: "sign in as this MLflow `USER` (made with mlstack users add; its password is in the state); default: the env file's, up's creator"},
			&cli.StringFlag{Name: "format", Value: "shell", Usage: "`FORMAT`: shell (export lines), dotenv, json, or github ($GITHUB_ENV lines + ::add-mask:: for secrets; with $GITHUB_ENV set, appends there)"},
			// env prints variables, not a report: --output would be a
			// guess at --format, so it is refused with the flag to use.
			&cli.StringFlag{Name: "output", Hidden: true},
		),
		Action: s.action(func(c *cli.Context, a provision.AWS) error {
			if c.IsSet("output") {
				return &provision.UsageError{Msg: "env takes --format shell|dotenv|json|github, not --output: " +
					"its output is the stack's variables (see `mlstack env --help`)"}
			}
			return provision.Env(c.Context, provision.EnvOptions{Stack: stackOf(c), AWS: a, Streams: s.std(), Format: c.String("format"), User: c.String("user")})
		}),
	}
}
