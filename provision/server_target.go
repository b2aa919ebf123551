package provision

// Commands that operate the running server: they find the stack's instance
// in AWS and its files here, then hand over to package server.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/provision/local"
	"github.com/mlstack/mlstack/provision/server"
	"golang.org/x/crypto/ssh"
)

// target is a stack's instance as ssh, logs and up's diagnosis reach it.
type target struct {
	stack    string
	h        hints    // for the commands it advises
	cidrs    []string // allowed to reach the server: an up hint keeps them
	dir      local.Dir
	s        *cloud.Session
	inst     *ec2types.Instance
	id       string
	host     string // public DNS name, else public IP
	sshOpen  bool   // the security group lets tcp 22 in
	haveKeys bool   // this machine holds the login key and the host key
}

func newTarget(h hints, dir local.Dir, s *cloud.Session, inst *ec2types.Instance, sshOpen bool) *target {
	return &target{stack: h.stack, h: h, dir: dir, s: s, inst: inst, id: aws.ToString(inst.InstanceId),
		host: cloud.TrackingHost(inst), sshOpen: sshOpen, haveKeys: dir.HasSSHKeys()}
}

// sshHost is how package server reaches host with the stack's files.
func sshHost(dir local.Dir, host string) server.Host {
	return server.Host{Name: host, KeyFile: dir.SSHKeyFile(), KnownHostsFile: dir.KnownHostsFile()}
}

// findTarget discovers the stack's running instance and whether SSH to it
// can work, and refreshes known_hosts for its current addresses.
func findTarget(ctx context.Context, st Stack, a cloud.AWS) (*target, error) {
	if err := validateAll(st.validate, a.Validate); err != nil {
		return nil, err
	}
	s, err := cloud.OpenSession(ctx, a)
	if err != nil {
		return nil, err
	}
	dir := local.StackDir(st.StateDir, st.Name)
	sec, err := dir.LoadFor(s.Account, s.Region)
	if err != nil {
		return nil, cloud.AsUsage(err)
	}
	n := cloud.NamesFor(st.Name, s.Account, s.Region)
	var insts []ec2types.Instance
	var sg *cloud.SGFound
	err = cloud.Parallel(
		func() (err error) { insts, _, err = cloud.StackInstances(ctx, s.EC2, n, cloud.UsableStates); return },
		func() (err error) { sg, err = cloud.FindSecurityGroup(ctx, s.EC2, n); return },
	)
	if err != nil {
		return nil, err
	}
	h := hintsFor(st, a)
	if len(insts) == 0 {
		return nil, fmt.Errorf("stack %s has no instance in %s: `%s` launches one", st.Name, s.Region, h.up(sg.Allowed(), sg.SSHOpen()))
	}
	if sec != nil {
		insts = recordedFirst(insts, sec.InstanceID)
	}
	t := newTarget(h, dir, s, &insts[0], sg.SSHOpen())
	t.cidrs = sg.Allowed()
	return t, t.refreshPins(ctx, n)
}

// refreshPins pins what the instance published (it may have been replaced
// since up pinned) and points known_hosts at its current addresses.
func (t *target) refreshPins(ctx context.Context, n cloud.Names) error {
	if t.host == "" {
		return nil
	}
	keys, _, err := readServerKeys(ctx, t.s.SSM, n, t.inst, time.Time{}, time.Now())
	if err != nil {
		return err
	}
	if keys != nil {
		_, err = pinKeys(t.dir, keys, t.inst)
		t.haveKeys = t.dir.HasSSHKeys()
		return err
	}
	hk, err := t.dir.LoadPinnedHostKey()
	if err != nil || hk == nil {
		return err
	}
	_, err = t.dir.WriteKnownHosts([]string{aws.ToString(t.inst.PublicDnsName), aws.ToString(t.inst.PublicIpAddress)}, hk)
	return err
}

// sshReady says why SSH cannot be used, or "" when it can.
func (t *target) sshReady() string {
	switch {
	case !t.sshOpen:
		return fmt.Sprintf("SSH is off for stack %s (port 22 closed): `%s` opens it to the allowed CIDRs", t.stack, t.h.up(t.cidrs, true))
	case !t.haveKeys:
		return fmt.Sprintf("this machine has no SSH keys for stack %s in %s: run `%s` where the stack was created", t.stack, t.dir.Path(), t.h.cmd("ssh"))
	case t.host == "":
		return fmt.Sprintf("instance %s has no public DNS name or IP", t.id)
	case cloud.StateOf(t.inst) != ec2types.InstanceStateNameRunning:
		return fmt.Sprintf("instance %s is %s, not running", t.id, cloud.StateOf(t.inst))
	}
	return ""
}

func (t *target) dial(ctx context.Context, r server.Remote) (*ssh.Client, error) {
	c, err := server.Dial(ctx, sshHost(t.dir, t.host), r)
	var mismatch *server.HostKeyMismatchError
	var unknown *server.UnknownHostError
	switch {
	case errors.As(err, &mismatch):
		return nil, fmt.Errorf("%w: `%s`, then `%s`", err, t.h.cmd("down", "--yes"), t.h.up(t.cidrs, t.sshOpen))
	case errors.As(err, &unknown):
		return nil, fmt.Errorf("%w: `%s` records it", err, t.h.up(t.cidrs, t.sshOpen))
	}
	return c, err
}

// console reads the instance's console output from EC2.
func (t *target) console() server.Console {
	return func(ctx context.Context) (string, error) { return cloud.ConsoleOutput(ctx, t.s.EC2, t.id) }
}

// SSH runs a command or a shell on the stack's instance.
func SSH(ctx context.Context, o SSHOptions) error {
	o.Streams.fill()
	t, err := findTarget(ctx, o.Stack, o.AWS)
	if err != nil {
		return err
	}
	if why := t.sshReady(); why != "" {
		return errors.New(why)
	}
	client, err := t.dial(ctx, o.Remote)
	if err != nil {
		return err
	}
	defer client.Close()
	return server.Exec(ctx, client, o.Command, o.Stdin, o.Out, o.Log)
}

// Logs prints the bootstrap log and the server's journal over SSH; without
// SSH it prints the instance's console output from EC2.
func Logs(ctx context.Context, o LogsOptions) error {
	o.Streams.fill()
	t, err := findTarget(ctx, o.Stack, o.AWS)
	if err != nil {
		return err
	}
	log := o.Streams.progress()
	if why := t.sshReady(); why != "" {
		log.Info("%s", why)
		log.Info("showing the console output of %s from EC2 instead: cloud-init's output, not the server's journal", t.id)
		return server.PrintConsole(ctx, t.console(), o.Logs.Follow, o.Out, log)
	}
	client, err := t.dial(ctx, o.Remote)
	var mismatch *server.HostKeyMismatchError
	if errors.As(err, &mismatch) {
		return err // never fall back quietly from a wrong host key
	}
	if err != nil {
		log.Warn("%v", err)
		log.Info("showing the console output of %s from EC2 instead", t.id)
		return server.PrintConsole(ctx, t.console(), o.Logs.Follow, o.Out, log)
	}
	defer client.Close()
	return server.PrintLogs(ctx, client, o.Logs, o.Out, o.Log)
}

// bootstrapTail returns the last n lines of the bootstrap log, over SSH when
// it is open, else from the console output, and where they came from.
func (t *target) bootstrapTail(ctx context.Context, r server.Remote, lo server.LogOptions, n int, log *progress) ([]string, string, error) {
	if why := t.sshReady(); why == "" {
		client, err := t.dial(ctx, r)
		var mismatch *server.HostKeyMismatchError
		switch {
		case errors.As(err, &mismatch):
			return nil, "", err
		case err != nil:
			log.Warn("%v", err)
		default:
			defer client.Close()
			lines, source, err := server.BootstrapTail(ctx, client, lo, n)
			if err == nil {
				return lines, source, nil
			}
			log.Warn("%v", err)
		}
	}
	text, err := t.console()(ctx)
	if err != nil {
		return nil, "", err
	}
	return server.LastLines(text, n), "the instance console output from EC2", nil
}

// explainUnhealthy turns up's health-wait timeout into a diagnosis: the last
// lines of the bootstrap log and what to do next.
func (t *target) explainUnhealthy(ctx context.Context, cause error, log *progress) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w\nthe stack exists; run `%s` again to keep waiting, or `%s`", cause, t.h.up(t.cidrs, t.sshOpen), t.h.cmd("status"))
	}
	t.printBootstrapTail(ctx, log)
	more := "`" + t.h.cmd("logs") + "` prints the whole bootstrap log and the server journal"
	if !t.sshOpen {
		more = "`" + t.h.up(t.cidrs, true) + "` opens SSH, then `" + t.h.cmd("logs") +
			"` prints the whole bootstrap log and the server journal (without SSH: the console output only)"
	}
	return fmt.Errorf("%w\nthe stack exists. Next: %s; `%s` keeps waiting; "+
		"`%s` removes everything", cause, more, t.h.up(t.cidrs, t.sshOpen), t.h.cmd("down", "--yes"))
}

// printBootstrapTail shows the last lines of the bootstrap log, or why it cannot.
func (t *target) printBootstrapTail(ctx context.Context, log *progress) {
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const n = 25
	lines, source, err := t.bootstrapTail(dctx, server.Remote{}, server.LogOptions{}, n, log)
	switch {
	case err != nil:
		log.Warn("could not read the bootstrap log: %v", err)
	case len(lines) == 0:
		log.Warn("the bootstrap log is empty so far (%s); %s", source, server.NoConsoleYet)
	default:
		log.Warn("last %d lines of the bootstrap log (%s):", len(lines), source)
		for _, l := range lines {
			log.Info("| %s", strings.TrimRight(l, "\r"))
		}
	}
}
