package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// privateMoto gives this package a moto server of its own when the test
// command shares one (MLSTACK_TEST_MOTO_URL): these tests reset moto before
// each test (a blank account) and switch its IAM enforcement on and off,
// which would empty or deny the parameters other packages' tests (the
// cloudinit keys script's) are using at the same moment. It returns the
// function that stops it; without a shared moto it does nothing.
func privateMoto() (stop func()) {
	if os.Getenv("MLSTACK_TEST_MOTO_URL") == "" {
		return func() {}
	}
	dir, err := os.MkdirTemp("", "mlstack-cli-moto-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "private moto: %v\n", err)
		os.Exit(1)
	}
	script := func(verb string) *exec.Cmd {
		c := exec.Command("../../scripts/moto.sh", verb)
		c.Env, c.Stderr = append(os.Environ(), "MLSTACK_MOTO_DIR="+dir), os.Stderr
		return c
	}
	out, err := script("start").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "private moto for cmd/mlstack: scripts/moto.sh start: %v\n", err)
		os.Exit(1)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "export MLSTACK_TEST_MOTO_URL="); ok {
			os.Setenv("MLSTACK_TEST_MOTO_URL", strings.Trim(v, `'"`))
		}
	}
	return func() {
		if err := script("stop").Run(); err != nil {
			fmt.Fprintf(os.Stderr, "private moto: scripts/moto.sh stop: %v\n", err)
		}
		os.RemoveAll(dir)
	}
}
