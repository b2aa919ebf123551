//go:build boottest

package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitHealthy waits for /health 200 at the public DNS name and returns
// the time since boot. It fails fast when the container stops, or when
// cloud-init is done and mlflow.service is not even trying.
func (b *bootTest) waitHealthy(t *testing.T) time.Duration {
	t.Logf("container booting; waiting up to %s for https://%s:5000/health", b.cfg.healthTimeout, b.inst.dns)
	// Certificate unchecked for this timing probe alone (no credentials;
	// up may not have pinned it yet): every later request pins it.
	probe := b.client(nil, 3*time.Second)
	deadline := time.Now().Add(b.cfg.healthTimeout)
	lastNote, lastLook, dead := time.Now(), time.Now(), 0
	for {
		if resp, err := probe.Get("https://" + b.inst.dns + ":5000/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(b.bootStart)
			}
		}
		if !b.box.p.running() {
			t.Fatalf("the container stopped before the server was healthy\n%s", b.tail(b.box.log, 60))
		}
		if time.Since(lastLook) >= 5*time.Second && b.bootFinished(t) {
			lastLook = time.Now()
			unit, _ := b.inContainer(t, nil, "systemctl", "is-active", "mlflow.service")
			switch strings.TrimSpace(unit) {
			case "active", "activating", "reloading":
				dead = 0
			default:
				if dead++; dead >= 3 {
					t.Fatalf("cloud-init finished but mlflow.service is %q", strings.TrimSpace(unit))
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server was not healthy %s after boot", b.cfg.healthTimeout)
		}
		if time.Since(lastNote) >= 30*time.Second {
			last, _ := b.inContainer(t, nil, "sh", "-c", "tail -n 1 /var/log/cloud-init-output.log 2>/dev/null")
			t.Logf("still waiting (%.0f s): %.120s", time.Since(b.bootStart).Seconds(), b.mask(strings.TrimSpace(last)))
			lastNote = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (b *bootTest) bootFinished(t *testing.T) bool {
	_, err := b.inContainer(t, nil, "test", "-e", "/var/lib/cloud/instance/boot-finished")
	return err == nil
}

// checkUpResult: up (or upgrade) exits 0 and the stack is at its https
// URI, healthy, with the instance the test booted; what up pinned is the
// instance's.
func (b *bootTest) checkUpResult(t *testing.T) stackJSON {
	b.waitUp(t)
	var s stackJSON
	if b.up.cmd.Args[1] == "upgrade" { // it has no --output json: status has the stack
		s = b.checkStack(t, []byte(b.mlstack(t, "status", "--output", "json")))
	} else {
		s = b.upResult(t)
	}
	b.checkPins(t)
	return s
}

// checkPins: what up pinned is what the instance made: its certificate
// (served on 5000 and published in SSM) and its SSH host key (known_hosts).
// The private halves never left the instance: the secrets phase looks
// for them.
func (b *bootTest) checkPins(t *testing.T) {
	b.cert = filepath.Join(b.state, bootStack, "server.crt")
	pinned, err := os.ReadFile(b.cert)
	if err != nil {
		t.Fatal(err)
	}
	made, err := os.ReadFile(filepath.Join(b.box.root, "var", "lib", "mlflow", "tls", "server.crt"))
	if err != nil || !bytes.Equal(pinned, made) {
		t.Fatalf("the pinned %s is not the certificate the instance made (%v)", b.cert, err)
	}
	served, err := certOf(b.inst.dns)
	if err != nil || !bytes.Equal(served, pemDER(pinned)) {
		t.Fatalf("the server serves another certificate than the pinned one (%v)", err)
	}
	hostPub, err := os.ReadFile(filepath.Join(b.box.root, "etc", "ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		t.Fatalf("cloud-init made no ed25519 host key: %v", err)
	}
	f := strings.Fields(string(hostPub))
	known, err := os.ReadFile(filepath.Join(b.state, bootStack, "known_hosts"))
	want := b.inst.dns + "," + b.inst.ip + " " + f[0] + " " + f[1]
	if err != nil || !strings.Contains(string(known), want) {
		t.Fatalf("known_hosts does not pin the instance's host key for %s,%s (%v):\n%s", b.inst.dns, b.inst.ip, err, known)
	}
	b.privateKeys = append(b.privateKeys, filepath.Join(b.box.root, "var", "lib", "mlflow", "tls", "server.key"),
		filepath.Join(b.box.root, "etc", "ssh", "ssh_host_ed25519_key"))
	t.Logf("pinned: certificate %s for %s, %s; host key %s", fingerprint(served), b.inst.dns, b.inst.ip, f[1])
}

// client is an HTTP client that reaches the instance's public DNS name
// and IP (and localhost) at 127.0.0.1, trusting the PEM certificate alone
// (nil: unchecked, for the health probe).
func (b *bootTest) client(certPEM []byte, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = b.dialInstance
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: certPEM == nil}
	if certPEM != nil {
		tr.TLSClientConfig.RootCAs = poolOf(certPEM)
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// checkCloudInit: cloud-init finished cleanly; mlflow.service is enabled
// and active, with the allowed hosts and CORS origins from IMDS and its
// secrets from SSM.
func (b *bootTest) checkCloudInit(t *testing.T) {
	// It exits 1 on "error": keep the JSON all the same.
	out, _ := b.inContainer(t, nil, "cloud-init", "status", "--format", "json")
	var st cloudInitStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || !st.cleanEnough() {
		long, _ := b.inContainer(t, nil, "cloud-init", "status", "--long")
		t.Fatalf("cloud-init did not finish cleanly (%v):\n%s", err, b.mask(long))
	}
	b.must(t, "systemctl", "is-enabled", "mlflow.service")
	b.must(t, "systemctl", "is-active", "mlflow.service")
	env := b.must(t, "cat", "/run/mlflow/allowed-hosts.env")
	d, ip := b.inst.dns, b.inst.ip
	for _, want := range []string{
		"MLFLOW_SERVER_ALLOWED_HOSTS=" + d + "," + d + ":5000," + ip + "," + ip + ":5000,",
		"MLFLOW_SERVER_CORS_ALLOWED_ORIGINS=https://" + d + ":5000,https://" + ip + ":5000,",
	} {
		if !strings.Contains(env, want) {
			t.Fatalf("allowed-hosts.env has no %q:\n%s", want, env)
		}
	}
	b.journalHas(t, "mlflow.service", "mlstack-keys: secrets read from SSM", "the server's secrets")
}

// checkInstall: MLflow came from the lock with uv, hash-checked (another
// version: from version pins), the lock from the stack bucket, and nothing
// ran apt (the rootfs has no package lists and no python3-venv, like the
// Ubuntu image at first boot).
func (b *bootTest) checkInstall(t *testing.T) {
	log := b.must(t, "cat", "/var/log/cloud-init-output.log")
	var setup []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "mlstack-setup:") {
			setup = append(setup, l)
		}
	}
	lines := strings.Join(setup, "\n")
	t.Log(b.mask(lines))
	want := []string{"installed with uv", "installed MLflow " + b.mlflow + "\n"}
	if b.mlflow == b.cfg.locked {
		want = append(want, "from the lock (sha256-checked) with uv")
	} else {
		want = append(want, "MLflow "+b.mlflow+" is not the locked "+b.cfg.locked+": installing it by version pins")
	}
	for _, w := range want {
		if !strings.Contains(lines+"\n", w) {
			t.Fatalf("the instance's setup log has no %q", w)
		}
	}
	fetched := countFunc(strings.Split(log, "\n"), func(l string) bool {
		return strings.HasPrefix(l, "mlstack-s3get: ") && strings.Contains(l, "/bootstrap/mlflow-lock-x86_64-") && strings.Contains(l, "sha256 checked")
	})
	if fetched == 0 {
		t.Fatal("the lock was not fetched from the bucket and checked")
	}
	if lists, _ := b.inContainer(t, nil, "ls", "/var/lib/apt/lists/"); strings.Contains(lists, "_Packages") {
		t.Fatal("something ran apt-get update during the boot")
	}
	if st, _ := b.inContainer(t, nil, "dpkg-query", "-W", "-f", "${Status}", "python3-venv"); strings.Contains(st, "ok installed") {
		t.Fatal("python3-venv got installed")
	}
}
