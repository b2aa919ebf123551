package cloudinit

import (
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/templates"
)

func TestShellcheck(t *testing.T) {
	t.Parallel()
	sc := needTool(t, "shellcheck")
	check := func(t *testing.T, name, script string) {
		t.Helper()
		cmd := exec.Command(sc, "--shell=sh", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}

	// The template files themselves.
	scripts, err := fs.Glob(templates.FS, "*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no *.sh in templates.FS (err %v)", err)
	}
	for _, name := range scripts {
		src, err := templates.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		check(t, name, string(src))
	}

	// What actually lands on the instance: every written script, and any
	// runcmd entry given as a string (those run through sh).
	c := parse(t, render(t, validParams()))
	for _, f := range c.WriteFiles {
		if strings.HasPrefix(f.Content, "#!") {
			check(t, f.Path, f.Content)
		}
	}
	for i, rc := range c.Runcmd {
		if s, ok := rc.(string); ok {
			check(t, "runcmd entry "+string(rune('0'+i)), "#!/bin/sh\n"+s+"\n")
		}
	}
}
