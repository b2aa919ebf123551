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
// function that stops it; without a shared moto, or in a shard's child
// (whose moto the parent started for it), it does nothing.
func privateMoto() (stop func()) {
	if os.Getenv("MLSTACK_TEST_MOTO_URL") == "" || os.Getenv(shardChild) != "" {
		return func() {}
	}
	url, stop, err := startMoto()
	if err != nil {
		fmt.Fprintf(os.Stderr, "private moto for cmd/mlstack: %v\n", err)
		os.Exit(1)
	}
	os.Setenv("MLSTACK_TEST_MOTO_URL", url)
	return stop
}

// startMoto starts a moto server in a directory of its own
// (scripts/moto.sh) and returns its URL and the function that stops it.
func startMoto() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "mlstack-cli-moto-")
	if err != nil {
		return "", nil, fmt.Errorf("private moto: %w", err)
	}
	script := func(verb string) *exec.Cmd {
		c := exec.Command("../../scripts/moto.sh", verb)
		c.Env, c.Stderr = append(os.Environ(), "MLSTACK_MOTO_DIR="+dir), os.Stderr
		return c
	}
	stop = func() {
		if err := script("stop").Run(); err != nil {
			fmt.Fprintf(os.Stderr, "private moto: scripts/moto.sh stop: %v\n", err)
		}
		os.RemoveAll(dir)
	}
	out, err := script("start").Output()
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("scripts/moto.sh start: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "export MLSTACK_TEST_MOTO_URL="); ok {
			url = strings.Trim(v, `'"`)
		}
	}
	if url == "" {
		stop()
		return "", nil, fmt.Errorf("scripts/moto.sh start printed no MLSTACK_TEST_MOTO_URL")
	}
	return url, stop, nil
}
