package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/provision/local"
)

const (
	password  = "Jx7kPq2mWv9RtL4nYc8BzA3f"
	roleToken = "IQoJb3JpZ2luX2VjEXAMPLEtokenAAAAAAAAAAAAAAAAAAAAAA=="
)

// bootWork is a directory like the boot test's: a secrets file, files meant
// to hold secrets, logs, a state dir and the instance's /var/log.
func bootWork(t *testing.T) (work, state string) {
	t.Helper()
	work = t.TempDir()
	write(t, filepath.Join(work, "secrets"), password+"\n"+roleToken+"\nshort\n")
	write(t, filepath.Join(work, "user-data"), "admin_password = "+password+"\n")
	write(t, filepath.Join(work, "aemm.json"), `{"Token": "`+roleToken+`"}`)
	write(t, filepath.Join(work, "up.log"), "• creating IAM user mlstack-boot\n")
	write(t, filepath.Join(work, "rootfs", "var", "log", "cloud-init-output.log"), "mlstack-setup: installing mlflow\n")
	state = filepath.Join(work, "state")
	d := local.StackDir(state, "boot")
	if err := d.Save(&local.Secrets{Stack: "boot", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", MLflowPassword: password,
		FlaskSecretKey: "fl4sk-S3cret-k3y-0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	write(t, d.KnownHostsFile(), "ec2-1-2-3-4.compute.amazonaws.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
	return work, state
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func scan(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	code := run(args, &stderr)
	if out := stderr.String(); strings.Contains(out, password) || strings.Contains(out, roleToken) {
		t.Errorf("secretscan printed a secret:\n%s", out)
	}
	return code, stderr.String()
}

// The boot test's call: the files meant for secrets skipped, everything else scanned.
func bootArgs(work, state string) []string {
	return []string{"-secrets", filepath.Join(work, "secrets"), "-state-dir", state,
		"-skip", "secrets", "-skip", "user-data", "-skip", "aemm.json", "-skip", "rootfs", work, filepath.Join(work, "rootfs", "var", "log")}
}

func TestCleanRun(t *testing.T) {
	work, state := bootWork(t)
	code, out := scan(t, bootArgs(work, state)...)
	if code != 0 || !strings.Contains(out, "no secret in 3 files") || !strings.Contains(out, "1 line(s)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestFindsLeaks(t *testing.T) {
	for name, plant := range map[string]func(work, state string){
		"a log, base64": func(work, _ string) {
			write(t, filepath.Join(work, "client.log"), "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+password)))
		},
		"the instance's log, cut short": func(work, _ string) {
			write(t, filepath.Join(work, "rootfs", "var", "log", "cloud-init-output.log"), "+ echo "+roleToken[:20]+"\n")
		},
		"the state dir's known_hosts": func(_, state string) {
			write(t, filepath.Join(state, "boot", "known_hosts"), "# "+password+"\n")
		},
		"a secret of the state dir only": func(work, _ string) { write(t, filepath.Join(work, "up.log"), "fl4sk-S3cret-k3y-0123456789abcdef") },
	} {
		t.Run(name, func(t *testing.T) {
			work, state := bootWork(t)
			plant(work, state)
			if code, out := scan(t, bootArgs(work, state)...); code != 1 || strings.Count(out, "secretscan: LEAK: ") != 1 {
				t.Errorf("exit %d, want 1 with one finding:\n%s", code, out)
			}
		})
	}
}

func TestScanningNothingIsAnError(t *testing.T) {
	work, _ := bootWork(t)
	empty := filepath.Join(work, "empty")
	write(t, empty, "")
	for name, args := range map[string][]string{
		"no secrets":   {"-secrets", empty, work},
		"no paths":     {"-secrets", filepath.Join(work, "secrets")},
		"missing path": {"-secrets", filepath.Join(work, "secrets"), filepath.Join(work, "nope")},
		"missing file": {"-secrets", filepath.Join(work, "nope"), work},
		"bad flag":     {"-bogus", work},
	} {
		if code, out := scan(t, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2:\n%s", name, code, out)
		}
	}
}

// TestPrivateKeyFlag: -private-key looks for a private key that must not
// leave where it was made (the instance's host key): found when its file
// is printed, not when only its public half shows; a missing file is an error.
func TestPrivateKeyFlag(t *testing.T) {
	work, state := bootWork(t)
	priv, pub, err := local.NewSSHKey("host")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	write(t, keyFile, string(priv))
	args := append([]string{"-private-key", keyFile}, bootArgs(work, state)...)
	write(t, filepath.Join(work, "up.log"), "pinned host key "+string(pub))
	if code, out := scan(t, args...); code != 0 {
		t.Errorf("the public half alone: exit %d, want 0:\n%s", code, out)
	}
	write(t, filepath.Join(work, "console.log"), "cat /etc/ssh/ssh_host_ed25519_key\n"+string(priv))
	if code, out := scan(t, args...); code != 1 || !strings.Contains(out, "LEAK") {
		t.Errorf("the key file printed: exit %d, want 1:\n%s", code, out)
	}
	if code, out := scan(t, append([]string{"-private-key", filepath.Join(work, "nope")}, bootArgs(work, state)...)...); code != 2 {
		t.Errorf("missing key file: exit %d, want 2:\n%s", code, out)
	}
}
