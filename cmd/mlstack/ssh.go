package main

import (
	"github.com/mlstack/mlstack/provision"
	"github.com/mlstack/mlstack/provision/server"
	"github.com/urfave/cli/v2"
)

// remoteFlags point ssh and logs at another SSH server than the instance's
// port 22; tests use them with a local OpenSSH server.
func remoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ssh-addr", Hidden: true, Usage: "dial HOST:PORT instead of the instance's port 22 (tests)"},
		&cli.StringFlag{Name: "ssh-user", Hidden: true, Value: server.LoginUser, Usage: "login user (tests)"},
	}
}

func remoteOf(c *cli.Context) server.Remote {
	return server.Remote{Addr: c.String("ssh-addr"), User: c.String("ssh-user")}
}

func sshCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:      "ssh",
		Usage:     "a shell, or one command, on the stack's instance (needs up --ssh)",
		ArgsUsage: "[-- command [args...]]",
		Description: "Connects as " + server.LoginUser + " with the stack's key and checks the server's host key " +
			"against the one mlstack generated (known_hosts in the state directory); any other key is refused. " +
			"With a command it exits with the command's status.\n\n" +
			examples(
				"mlstack ssh --stack demo",
				"mlstack ssh --stack demo -- systemctl status mlflow"),
		Flags: append(commonFlags(), remoteFlags()...),
		Action: func(c *cli.Context) error {
			a := awsOf(c)
			*s.ran = ranWith{verb: "ssh", stack: stackOf(c), aws: a}
			return provision.SSH(c.Context, provision.SSHOptions{
				Stack: stackOf(c), AWS: a, Streams: s.std(),
				Remote: remoteOf(c), Command: c.Args().Slice(), Stdin: s.stdin,
			})
		},
	}
}
