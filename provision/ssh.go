package provision

// SSH to the stack's instance, with a host key pinned from the start.
//
// mlstack speaks SSH itself through golang.org/x/crypto/ssh instead of running
// the system ssh: the host key check lives in this code, so nothing in a
// user's ~/.ssh/config (StrictHostKeyChecking no, a Host * block, a stale
// known_hosts entry) can weaken or confuse it; it works where no OpenSSH
// client is installed (slim CI images, Windows); and `ssh`, `logs` and up's
// bootstrap diagnosis share one tested path. The files it uses still work
// with the system ssh (see sshHint).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/term"
)

const (
	// LoginUser is the login user of Ubuntu AMIs; cloud-init gives it the
	// EC2 key pair.
	LoginUser = "ubuntu"

	hostKeyName    = "ssh_host_ed25519_key"
	knownHostsName = "known_hosts"
	sshDialTimeout = 20 * time.Second
)

// HostKeyFile holds the private half of the instance's SSH host key. It
// leaves this machine only inside the user-data.
func (d stateDir) HostKeyFile() string { return d.file(hostKeyName) }

// KnownHostsFile pins the host key for the instance's public DNS name and IP.
func (d stateDir) KnownHostsFile() string { return d.file(knownHostsName) }

// hostKey is the stack's SSH host key.
type hostKey struct {
	private []byte // OpenSSH PEM; a secret
	public  ssh.PublicKey
}

// authorizedLine is the public key as one "ssh-ed25519 AAAA… comment" line.
func (k hostKey) authorizedLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.public)))
}

// loadHostKey reads the host key; a missing file gives (nil, nil).
func loadHostKey(sd stateDir) (*hostKey, error) {
	b, err := os.ReadFile(sd.HostKeyFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading SSH host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		// Never echo the content.
		return nil, fmt.Errorf("SSH host key %s is not an OpenSSH private key; move it away and run `mlstack up` to start over", sd.HostKeyFile())
	}
	return &hostKey{private: b, public: signer.PublicKey()}, nil
}

// ensureHostKey loads the stack's host key or generates one (ed25519, here,
// so that the first connection can be verified too) and saves it 0600.
func ensureHostKey(sd stateDir, stack string) (k *hostKey, created bool, err error) {
	if k, err = loadHostKey(sd); err != nil || k != nil {
		return k, false, err
	}
	priv, _, err := newSSHKey("mlstack-" + stack + "-host")
	if err != nil {
		return nil, false, err
	}
	if err := sd.writeFile(hostKeyName, priv); err != nil {
		return nil, false, err
	}
	k, err = loadHostKey(sd)
	return k, true, err
}

// prepareHostKey makes sure the stack has a host key before anything is
// created: it goes into the instance's user-data.
func prepareHostKey(sd stateDir, stack string, instanceExists bool, log *progress) (*hostKey, error) {
	k, created, err := ensureHostKey(sd, stack)
	if err != nil {
		return nil, err
	}
	if created && instanceExists {
		log.warn("generated an SSH host key for stack %s, but its running instance was set up without it: "+
			"`mlstack ssh` will refuse that instance's key until the stack is rebuilt (`mlstack down`, `mlstack up`)", stack)
	}
	return k, nil
}

// recordHostKey writes known_hosts for the running instance and says how to
// reach it when SSH is on.
func recordHostKey(sd stateDir, inst *ec2types.Instance, k *hostKey, sshOn bool, stack string, log *progress) error {
	if k == nil {
		return nil
	}
	before, _ := os.ReadFile(sd.KnownHostsFile())
	if err := writeKnownHosts(sd, inst, k.public); err != nil {
		return err
	}
	if after, _ := os.ReadFile(sd.KnownHostsFile()); !bytes.Equal(before, after) {
		log.step("pinned SSH host key %s in %s", fingerprint(k.public), sd.KnownHostsFile())
	}
	if sshOn {
		log.step("SSH is open to the allowed CIDRs: `mlstack ssh --stack %s`, or %s", stack, sshHint(sd, trackingHost(inst)))
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeKnownHosts records the host key for the instance's public DNS name
// and public IP, the names a client may use.
func writeKnownHosts(sd stateDir, inst *ec2types.Instance, pub ssh.PublicKey) error {
	var names []string
	for _, h := range []string{aws.ToString(inst.PublicDnsName), aws.ToString(inst.PublicIpAddress)} {
		if h != "" {
			names = append(names, knownhosts.Normalize(h))
		}
	}
	if len(names) == 0 {
		return nil
	}
	return sd.writeFile(knownHostsName, []byte(knownhosts.Line(names, pub)+"\n"))
}

// fingerprint is OpenSSH's SHA256:… form of a key.
func fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// HostKeyMismatchError is a server whose host key is not the pinned one.
type HostKeyMismatchError struct {
	Host, KnownHosts, Got, Want string
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("refusing to connect: %s presented host key %s, but %s pins %s for it. "+
		"This is not the server mlstack set up, or someone is in the middle of the connection. "+
		"If you replaced the instance outside mlstack, run `mlstack down` and `mlstack up` to start clean",
		e.Host, e.Got, e.KnownHosts, e.Want)
}

// pinnedHostKey checks every server key against known_hosts under host, the
// instance's public name, whatever address was dialled (tests dial a local
// port). Only ed25519 host keys are negotiated, so the check is exact.
func pinnedHostKey(file, host string) (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(net.JoinHostPort(host, "22"), remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("%s is not in %s: run `mlstack up` again to record its host key", host, file)
			}
			return &HostKeyMismatchError{Host: host, KnownHosts: file, Got: fingerprint(key), Want: fingerprint(ke.Want[0].Key)}
		}
		return err
	}, nil
}

// Remote says where and as whom to connect; the zero value means the
// instance's port 22 as LoginUser.
type Remote struct {
	Addr string // host:port to dial instead (tests)
	User string
}

// target is a stack's instance as ssh and logs see it.
type target struct {
	stack    string
	sd       stateDir
	s        *session
	id       string
	inst     *ec2types.Instance
	host     string // public DNS name, else public IP
	sshOpen  bool   // the security group lets tcp 22 in
	haveKeys bool   // this machine holds the login key and the host key
	hostKey  *hostKey
}

// findTarget discovers the stack's running instance and whether SSH to it
// can work, and refreshes known_hosts for its current addresses.
func findTarget(ctx context.Context, c Config) (*target, error) {
	if err := c.Validate(false); err != nil {
		return nil, err
	}
	s, err := connect(ctx, &c)
	if err != nil {
		return nil, err
	}
	n := NamesFor(c.Stack, s.account, s.region)
	t := &target{stack: c.Stack, sd: newStateDir(c.StateDir, c.Stack), s: s}
	st, err := t.sd.load()
	if err != nil {
		return nil, err
	}
	if st != nil {
		if err := st.checkIdentity(t.sd.path, s.account, s.region); err != nil {
			return nil, err
		}
	}
	var insts []ec2types.Instance
	var sg *sgState
	err = parallel(
		func() (err error) { insts, err = findInstances(ctx, s.ec2, n.Stack); return },
		func() (err error) { sg, err = findSecurityGroup(ctx, s.ec2, n); return },
	)
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("stack %s has no instance in %s: run `mlstack up --stack %s`", c.Stack, s.region, c.Stack)
	}
	t.inst = &insts[0]
	t.id = aws.ToString(t.inst.InstanceId)
	t.host = trackingHost(t.inst)
	for _, r := range sg.rules {
		t.sshOpen = t.sshOpen || r.port == sshPort
	}
	if t.hostKey, err = loadHostKey(t.sd); err != nil {
		return nil, err
	}
	t.haveKeys = t.hostKey != nil && fileExists(t.sd.SSHKeyFile())
	if t.haveKeys && t.host != "" {
		if err := writeKnownHosts(t.sd, t.inst, t.hostKey.public); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// sshReady says why SSH cannot be used, or "" when it can.
func (t *target) sshReady() string {
	switch {
	case !t.sshOpen:
		return fmt.Sprintf("SSH is off for stack %s (port 22 closed): `mlstack up --stack %s --ssh` opens it to the allowed CIDRs", t.stack, t.stack)
	case !t.haveKeys:
		return fmt.Sprintf("this machine has no SSH keys for stack %s in %s: run mlstack where the stack was created", t.stack, t.sd.path)
	case t.host == "":
		return fmt.Sprintf("instance %s has no public DNS name or IP", t.id)
	case t.inst.State != nil && t.inst.State.Name != ec2types.InstanceStateNameRunning:
		return fmt.Sprintf("instance %s is %s, not running", t.id, t.inst.State.Name)
	}
	return ""
}

// dial opens an SSH connection that checks the pinned host key.
func (t *target) dial(ctx context.Context, r Remote) (*ssh.Client, error) {
	key, err := os.ReadFile(t.sd.SSHKeyFile())
	if err != nil {
		return nil, fmt.Errorf("reading the stack's SSH key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("SSH key %s is not an OpenSSH private key", t.sd.SSHKeyFile())
	}
	cb, err := pinnedHostKey(t.sd.KnownHostsFile(), t.host)
	if err != nil {
		return nil, err
	}
	user := r.User
	if user == "" {
		user = LoginUser
	}
	addr := r.Addr
	if addr == "" {
		addr = net.JoinHostPort(t.host, "22")
	}
	cfg := &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           sshDialTimeout,
	}
	d := net.Dialer{Timeout: sshDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(sshDialTimeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		var mismatch *HostKeyMismatchError
		if errors.As(err, &mismatch) {
			return nil, mismatch
		}
		return nil, fmt.Errorf("SSH to %s@%s: %w", user, addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// RemoteExitError is a remote command that ended with a non-zero status;
// mlstack exits with the same status.
type RemoteExitError struct{ Status int }

func (e *RemoteExitError) Error() string {
	return fmt.Sprintf("remote command exited with status %d", e.Status)
}

// remoteErr turns a session's end into mlstack's errors.
func remoteErr(ctx context.Context, err error) error {
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &exit):
		return &RemoteExitError{Status: exit.ExitStatus()}
	case errors.As(err, &missing):
		return errors.New("the SSH session ended without an exit status")
	}
	return fmt.Errorf("SSH session: %w", err)
}

// runSession runs cmd ("" for a shell) on a new session. stdin is copied
// without waiting for its end: a terminal's stdin never ends by itself.
func runSession(ctx context.Context, client *ssh.Client, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("opening SSH session: %w", err)
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = stdout, stderr
	if stdin != nil {
		w, err := sess.StdinPipe()
		if err != nil {
			return fmt.Errorf("opening SSH session: %w", err)
		}
		go func() {
			_, _ = io.Copy(w, stdin)
			w.Close()
		}()
	}
	if cmd == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(cmd)
	}
	if err != nil {
		return fmt.Errorf("starting remote command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		return remoteErr(ctx, err)
	case <-ctx.Done():
		// Ask the remote command to end and give it a moment to (see
		// followSession for commands that must end for sure).
		_ = sess.Signal(ssh.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
		}
		return ctx.Err()
	}
}

// SSHOptions are what `mlstack ssh` adds to Config.
type SSHOptions struct {
	Remote
	// Command runs one command; empty opens an interactive shell. The words
	// are joined with spaces, as ssh(1) does.
	Command []string
	Stdin   io.Reader
}

// SSH runs a command or a shell on the stack's instance.
func SSH(ctx context.Context, c Config, o SSHOptions) error {
	t, err := findTarget(ctx, c)
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
	if len(o.Command) > 0 {
		return runSession(ctx, client, strings.Join(o.Command, " "), o.Stdin, c.Out, c.Log)
	}
	if f, ok := o.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return interactiveShell(ctx, client, f, c.Out, c.Log)
	}
	// No terminal: the remote shell reads its commands from stdin.
	return runSession(ctx, client, "", o.Stdin, c.Out, c.Log)
}

// interactiveShell runs a login shell on a remote pty, with the local
// terminal in raw mode and the window size kept in step.
func interactiveShell(ctx context.Context, client *ssh.Client, in *os.File, stdout, stderr io.Writer) error {
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("opening SSH session: %w", err)
	}
	defer sess.Close()
	fd := int(in.Fd())
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = 80, 24
	}
	termName := os.Getenv("TERM")
	if termName == "" {
		termName = "xterm-256color"
	}
	if err := sess.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return fmt.Errorf("requesting a remote terminal: %w", err)
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	defer term.Restore(fd, state)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Polled rather than SIGWINCH: the same code on every OS.
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if nw, nh, err := term.GetSize(fd); err == nil && (nw != w || nh != h) {
					w, h = nw, nh
					_ = sess.WindowChange(h, w)
				}
			}
		}
	}()
	sess.Stdout, sess.Stderr = stdout, stderr
	pipe, err := sess.StdinPipe()
	if err != nil {
		return fmt.Errorf("opening SSH session: %w", err)
	}
	go func() { _, _ = io.Copy(pipe, in) }()
	if err := sess.Shell(); err != nil {
		return fmt.Errorf("starting the remote shell: %w", err)
	}
	err = sess.Wait()
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		// The shell's last status; the user has seen why.
		return &RemoteExitError{Status: exit.ExitStatus()}
	}
	return remoteErr(ctx, err)
}

// sshHint is the system-ssh equivalent of `mlstack ssh`, for tools that need it.
func sshHint(sd stateDir, host string) string {
	return fmt.Sprintf("ssh -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes %s@%s",
		shellQuote(sd.SSHKeyFile()), shellQuote(sd.KnownHostsFile()), LoginUser, host)
}

// shellQuote single-quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
