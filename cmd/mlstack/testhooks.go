//go:build mlstack_testhooks

package main

import (
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/urfave/cli/v2"
)

// A test build (go build -tags mlstack_testhooks: the tests that run a
// real process) takes hidden flags that point the health wait and the
// server sign-in at the test's local stand-ins. The shipped binary has no
// such flag: it would send the stack's admin login to any URI.

func init() { addTestFlags = addHookFlags }

// hookFlag is the flag each command takes, by its full name.
var hookFlag = map[string]string{
	"up": "health-url", "upgrade": "health-url", "restore": "health-url", "status": "health-url",
	"down": "tracking-uri", "creds rotate": "tracking-uri",
	"users add": "tracking-uri", "users list": "tracking-uri", "users remove": "tracking-uri", "users passwd": "tracking-uri",
}

func addHookFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		addHookFlag(c, c.Name)
	}
}

// addHookFlag adds c's flag; once parsed, its value goes into the
// command's context, where provision looks for test hooks.
func addHookFlag(c *cli.Command, path string) {
	for _, sub := range c.Subcommands {
		addHookFlag(sub, path+" "+sub.Name)
	}
	name, ok := hookFlag[path]
	if !ok {
		return
	}
	c.Flags = append(c.Flags, &cli.StringFlag{Name: name, Hidden: true, Usage: "test build: reach this local stand-in instead"})
	c.Before = func(cc *cli.Context) error {
		if !cc.IsSet(name) {
			return nil // the context's hooks, if any, stay
		}
		h, _ := testhooks.From(cc.Context)
		if name == "health-url" {
			h.HealthURL = cc.String(name)
		} else {
			h.TrackingURI = cc.String(name)
		}
		cc.Context = testhooks.With(cc.Context, h)
		return nil
	}
}
