package provision

// Logs and SSH find the stack's instance over the fake AWS; where SSH
// cannot work, Logs falls back to the console output from EC2.

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud/cloudfake"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
)

// sshStack is a stack made with --ssh (or without), with console output.
func sshStack(t *testing.T, ssh bool) (*cloudfake.FakeAWS, string, string) {
	t.Helper()
	f := newInstalledFake(t)
	dir := t.TempDir()
	o, _, _ := upOpts(dir, "demo")
	o.SSH = ssh
	mustUp(t, f, o)
	id := f.LiveInstances()[0]
	f.Mu.Lock()
	f.Console[id] = "cloud-init starting\r\nmlstack: bootstrap done\r\n"
	f.Mu.Unlock()
	f.ResetCalls()
	return f, dir, id
}

func logsOpts(dir string) (LogsOptions, *bytes.Buffer, *bytes.Buffer) {
	out, log := &bytes.Buffer{}, &bytes.Buffer{}
	return LogsOptions{Stack: Stack{Name: "demo", StateDir: dir}, Streams: Streams{Out: out, Log: log}}, out, log
}

func TestLogsConsoleWithoutSSH(t *testing.T) {
	t.Parallel()
	f, dir, id := sshStack(t, false)
	o, out, log := logsOpts(dir)
	if err := Logs(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if out.String() != "cloud-init starting\nmlstack: bootstrap done\n" {
		t.Errorf("out = %q", out)
	}
	if !strings.Contains(log.String(), "SSH is off for stack demo (port 22 closed)") ||
		!strings.Contains(log.String(), "showing the console output of "+id+" from EC2 instead") {
		t.Errorf("progress:\n%s", log)
	}
	if len(f.Mutating()) != 0 {
		t.Errorf("mutating calls %v", f.Mutating())
	}

	// No console output yet.
	f.Mu.Lock()
	delete(f.Console, id)
	f.Mu.Unlock()
	o, out, log = logsOpts(dir)
	if err := Logs(f.Ctx(), o); err != nil || out.Len() != 0 || !strings.Contains(log.String(), server.NoConsoleYet) {
		t.Errorf("logs = %v, out %q, progress:\n%s", err, out, log)
	}

	// The console cannot be read.
	f.FailNext("GetConsoleOutput", cloudfake.AwsErr("UnauthorizedOperation"), 1)
	o, _, _ = logsOpts(dir)
	if err := Logs(f.Ctx(), o); err == nil || !strings.Contains(err.Error(), "reading the console output of "+id) {
		t.Errorf("logs = %v", err)
	}
}

func TestLogsFollowConsole(t *testing.T) {
	t.Parallel()
	f, dir, _ := sshStack(t, false)
	o, out, _ := logsOpts(dir)
	o.Logs.Follow = true
	ctx, cancel := context.WithTimeout(f.Ctx(), 20*time.Millisecond)
	defer cancel()
	// Following ends with the context (Ctrl-C), without an error.
	if err := Logs(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "bootstrap done") {
		t.Errorf("out = %q", out)
	}
}

func TestLogsFallBackWhenSSHFails(t *testing.T) {
	t.Parallel()
	f, dir, id := sshStack(t, true)
	o, out, log := logsOpts(dir)
	o.Remote = server.Remote{Addr: "127.0.0.1:1"} // nothing listens there
	if err := Logs(f.Ctx(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "connecting to 127.0.0.1:1") || !strings.Contains(log.String(), "showing the console output of "+id) {
		t.Errorf("progress:\n%s", log)
	}
	if !strings.Contains(out.String(), "bootstrap done") {
		t.Errorf("out = %q", out)
	}
}

func TestSSHRefusals(t *testing.T) {
	t.Parallel()
	t.Run("port closed", func(t *testing.T) {
		f, dir, _ := sshStack(t, false)
		err := SSH(f.Ctx(), SSHOptions{Stack: Stack{Name: "demo", StateDir: dir}, Command: []string{"true"}})
		if err == nil || !strings.Contains(err.Error(), "SSH is off for stack demo") || !strings.Contains(err.Error(), "--ssh") {
			t.Fatalf("ssh = %v", err)
		}
	})
	t.Run("no keys here", func(t *testing.T) {
		f, _, _ := sshStack(t, true)
		err := SSH(f.Ctx(), SSHOptions{Stack: Stack{Name: "demo", StateDir: t.TempDir()}})
		if err == nil || !strings.Contains(err.Error(), "this machine has no SSH keys for stack demo") {
			t.Fatalf("ssh = %v", err)
		}
	})
	t.Run("not running", func(t *testing.T) {
		f, dir, id := sshStack(t, true)
		f.SetInstanceState(id, ec2types.InstanceStateNamePending)
		err := SSH(f.Ctx(), SSHOptions{Stack: Stack{Name: "demo", StateDir: dir}})
		if err == nil || !strings.Contains(err.Error(), "instance "+id+" is pending, not running") {
			t.Fatalf("ssh = %v", err)
		}
	})
	t.Run("no address", func(t *testing.T) {
		f, dir, id := sshStack(t, true)
		f.SetInstanceState(id, ec2types.InstanceStateNameStopped)
		err := SSH(f.Ctx(), SSHOptions{Stack: Stack{Name: "demo", StateDir: dir}})
		if err == nil || !strings.Contains(err.Error(), "has no public DNS name or IP") {
			t.Fatalf("ssh = %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		f, dir, _ := sshStack(t, true)
		err := SSH(f.Ctx(), SSHOptions{Stack: Stack{Name: "demo", StateDir: dir}, Remote: server.Remote{Addr: "127.0.0.1:1"}})
		if err == nil || !strings.Contains(err.Error(), "connecting to 127.0.0.1:1") {
			t.Fatalf("ssh = %v", err)
		}
	})
}

func TestFindTarget(t *testing.T) {
	t.Parallel()
	t.Run("refreshes known_hosts", func(t *testing.T) {
		f, dir, id := sshStack(t, true)
		sd := local.StackDir(dir, "demo")
		must(t, os.Remove(sd.KnownHostsFile()))
		tg, err := findTarget(f.Ctx(), Stack{Name: "demo", StateDir: dir}, cloud.AWS{})
		if err != nil {
			t.Fatal(err)
		}
		if tg.id != id || !tg.sshOpen || !tg.haveKeys || tg.sshReady() != "" {
			t.Errorf("target %+v: %s", tg, tg.sshReady())
		}
		kh, err := os.ReadFile(sd.KnownHostsFile())
		if err != nil || !strings.Contains(string(kh), tg.host) {
			t.Errorf("known_hosts %q: %v", kh, err)
		}
		if len(f.Mutating()) != 0 {
			t.Errorf("mutating calls %v", f.Mutating())
		}
	})
	t.Run("no instance", func(t *testing.T) {
		f := newInstalledFake(t)
		_, err := findTarget(f.Ctx(), Stack{Name: "demo", StateDir: t.TempDir()}, cloud.AWS{})
		if err == nil || !strings.Contains(err.Error(), "stack demo has no instance in eu-west-3: `mlstack up --stack demo --state-dir ") {
			t.Fatalf("findTarget = %v", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		f := newInstalledFake(t)
		for _, c := range []struct {
			st Stack
			a  cloud.AWS
		}{{Stack{Name: "Demo", StateDir: "/x"}, cloud.AWS{}}, {Stack{Name: "demo"}, cloud.AWS{}}, {Stack{Name: "demo", StateDir: "/x"}, cloud.AWS{Region: "xx"}}} {
			if _, err := findTarget(f.Ctx(), c.st, c.a); !cloud.IsUsage(err) {
				t.Errorf("findTarget(%+v) = %v", c, err)
			}
		}
		if f.Connects != 0 {
			t.Error("bad input reached AWS")
		}
	})
	t.Run("state of another account", func(t *testing.T) {
		f, dir, _ := sshStack(t, true)
		f.Account = "111111111111"
		if _, err := findTarget(f.Ctx(), Stack{Name: "demo", StateDir: dir}, cloud.AWS{}); !cloud.IsUsage(err) {
			t.Fatalf("findTarget = %v", err)
		}
	})
	t.Run("lookup fails", func(t *testing.T) {
		f, dir, _ := sshStack(t, true)
		f.FailNext("DescribeVpcs", cloudfake.AwsErr("RequestLimitExceeded"), 1)
		if _, err := findTarget(f.Ctx(), Stack{Name: "demo", StateDir: dir}, cloud.AWS{}); err == nil || !strings.Contains(err.Error(), "finding the default VPC") {
			t.Fatalf("findTarget = %v", err)
		}
	})
	t.Run("damaged host key", func(t *testing.T) {
		f, dir, _ := sshStack(t, true)
		must(t, os.WriteFile(local.StackDir(dir, "demo").HostKeyFile(), []byte("garbage"), 0o600))
		f.Mu.Lock()
		delete(f.Params, "/mlstack/demo/tls-cert") // nothing published to pin again from
		f.Mu.Unlock()
		if _, err := findTarget(f.Ctx(), Stack{Name: "demo", StateDir: dir}, cloud.AWS{}); err == nil || !strings.Contains(err.Error(), "move it away") {
			t.Fatalf("findTarget = %v", err)
		}
	})
}
