//go:build boottest

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// container is a booted rootfs: systemd-nspawn -b on the host network.
type container struct {
	p    *proc
	root string // the rootfs copy it booted
	log  string // its console
}

// bootContainer copies the cached rootfs fresh (the cache stays clean),
// seeds it as NoCloud with the instance's user-data, and boots it.
func (b *bootTest) bootContainer(t *testing.T) {
	root := filepath.Join(b.work, "rootfs")
	copied := time.Now()
	b.run(t, 5*time.Minute, exec.Command("cp", "-a", "--reflink=auto", b.cfg.rootfs, root))
	os.Remove(filepath.Join(root, ".mlstack-complete"))
	t.Logf("fresh rootfs copy in %.1f s", time.Since(copied).Seconds())
	b.trustHostTLS(t, root)
	if b.cfg.db == "postgres" {
		b.rdsHost(t, root)
	}
	seed := filepath.Join(root, "var", "lib", "cloud", "seed", "nocloud")
	meta := fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", b.inst.id, strings.Split(b.inst.dns, ".")[0])
	writeFiles(t, map[string][]byte{
		filepath.Join(seed, "user-data"): b.inst.userData,
		filepath.Join(seed, "meta-data"): []byte(meta),
	})
	c := &container{root: root, log: filepath.Join(b.work, "console.log")}
	console, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	cmd := exec.Command("systemd-nspawn", "--register=no", "--keep-unit", "-q",
		"-M", fmt.Sprintf("mlstack-%s-%d", bootStack, os.Getpid()), "-D", root, "-b")
	cmd.Stdout, cmd.Stderr = console, console
	b.bootStart = time.Now()
	// Owned by the whole test: nspawn turns the SIGTERM of the cleanup into
	// an orderly poweroff of the container (30 s before SIGKILL).
	p, err := startGroup(b.t, cmd, 30*time.Second)
	if err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	c.p = p
	b.box = c
}

// trustHostTLS: this machine's TLS trust store, which holds the CA of the
// sandbox's egress proxy; pip (certifi) and uv (webpki roots) are told to
// use it. Not needed on EC2, where PyPI's certificate is public.
func (b *bootTest) trustHostTLS(t *testing.T, root string) {
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, map[string][]byte{
		filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt"): ca,
		filepath.Join(root, "etc", "pip.conf"):                            []byte("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"),
		filepath.Join(root, "etc", "uv", "uv.toml"):                       []byte("native-tls = true\n"),
	})
}

// writeFiles writes each file, making its directory: 0644, but a
// user-data 0600, as cloud-init keeps it (it holds no secret, yet tells
// how the stack is made).
func writeFiles(t *testing.T, files map[string][]byte) {
	for path, data := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(path) == "user-data" {
			mode = 0o600
		}
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// stopContainer powers the container off (SIGTERM: nspawn asks its
// systemd for an orderly poweroff), SIGKILL after 30 s.
func (b *bootTest) stopContainer(t testing.TB) {
	if b.box != nil && b.box.p != nil {
		b.box.p.stop(t, 30*time.Second)
	}
}

// leader is the host's PID of the container's init: nspawn's child (found
// by its parent in /proc/*/stat: the kernel here has no
// /proc/PID/task/TID/children).
func (b *bootTest) leader() (int, error) {
	if b.box == nil || !b.box.p.running() {
		return 0, fmt.Errorf("the container is not running")
	}
	parent := b.box.p.cmd.Process.Pid
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("the container has no init process")
}

// inContainer runs args inside the booted container's namespaces with a
// bare environment (nothing of this process leaks in), stdin from stdin
// (may be nil), and returns its stdout; err holds the masked stderr.
func (b *bootTest) inContainer(t testing.TB, stdin io.Reader, args ...string) (string, error) {
	l, err := b.leader()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(l), "--mount", "--uts", "--ipc", "--pid", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := b.wait(t, b.startProc(t, t, cmd), 2*time.Minute); err != nil {
		return stdout.String(), &cmdError{err: err, out: b.mask(stderr.String())}
	}
	return stdout.String(), nil
}

// must is inContainer failing t.
func (b *bootTest) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := b.inContainer(t, nil, args...)
	if err != nil {
		t.Fatalf("in the container: %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// journal is a unit's journal in the container, messages only.
func (b *bootTest) journal(t *testing.T, unit string) string {
	t.Helper()
	return b.must(t, "journalctl", "-u", unit, "--no-pager", "-o", "cat")
}

// journalHas fails t unless the unit's journal has a line containing want.
func (b *bootTest) journalHas(t *testing.T, unit, want, why string) {
	t.Helper()
	if !strings.Contains(b.journal(t, unit), want) {
		t.Fatalf("%s: the journal of %s has no %q", why, unit, want)
	}
}

// diagnose logs what the container says, masked.
func (b *bootTest) diagnose(t *testing.T) {
	if b.box == nil {
		return
	}
	t.Log("diagnostics:\n" + b.tail(b.box.log, 30))
	out, _ := b.inContainer(t, nil, "sh", "-c", "tail -n 40 /var/log/cloud-init-output.log; systemctl --no-pager status mlflow.service; journalctl --no-pager -n 40 -u mlflow.service")
	t.Log(b.mask(out))
}
