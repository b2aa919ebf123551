package server

// SSH to the stack's instance, with a host key pinned from the start.
//
// mlstack speaks SSH itself through golang.org/x/crypto/ssh instead of running
// the system ssh: the host key check lives in this code, so nothing in a
// user's ~/.ssh/config (StrictHostKeyChecking no, a Host * block, a stale
// known_hosts entry) can weaken or confuse it; it works where no OpenSSH
// client is installed (slim CI images, Windows); and `ssh`, `logs` and up's
// bootstrap diagnosis share one tested path. The files it uses still work
// with the system ssh (see Hint).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/term"
)

const (
	// LoginUser is the login user of Ubuntu AMIs; cloud-init gives it the
	// EC2 key pair.
	LoginUser = "ubuntu"

	dialTimeout = 20 * time.Second
)

// Host is an instance as SSH reaches it: its public name and the stack's
// files that authenticate both ends.
type Host struct {
	Name           string // public DNS name, else public IP
	KeyFile        string // the stack's login key (OpenSSH PEM)
	KnownHostsFile string // pins the host key for Name
}

// Remote overrides where and as whom to connect; the zero value means the
// instance's port 22 as LoginUser (tests dial a local sshd).
type Remote struct {
	Addr string // host:port to dial instead
	User string
}

// HostKeyMismatchError is a server whose host key is not the pinned one.
type HostKeyMismatchError struct {
	Host, KnownHosts, Got, Want string
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("refusing to connect: %s presented host key %s, but %s pins %s for it. "+
		"This is not the server mlstack set up, or someone is in the middle of the connection. "+
		"If you replaced the instance outside mlstack, remove the stack and create it again to start clean",
		e.Host, e.Got, e.KnownHosts, e.Want)
}

// UnknownHostError is a server whose name known_hosts does not list: up
// records it.
type UnknownHostError struct{ Host, KnownHosts string }

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("%s is not in %s: its host key was never recorded", e.Host, e.KnownHosts)
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
				return &UnknownHostError{Host: host, KnownHosts: file}
			}
			return &HostKeyMismatchError{Host: host, KnownHosts: file, Got: ssh.FingerprintSHA256(key), Want: ssh.FingerprintSHA256(ke.Want[0].Key)}
		}
		return err
	}, nil
}

// Dial opens an SSH connection that checks the pinned host key.
func Dial(ctx context.Context, h Host, r Remote) (*ssh.Client, error) {
	key, err := os.ReadFile(h.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the stack's SSH key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("SSH key %s is not an OpenSSH private key", h.KeyFile)
	}
	cb, err := pinnedHostKey(h.KnownHostsFile, h.Name)
	if err != nil {
		return nil, err
	}
	user, addr := r.User, r.Addr
	if user == "" {
		user = LoginUser
	}
	if addr == "" {
		addr = net.JoinHostPort(h.Name, "22")
	}
	cfg := &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           dialTimeout,
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
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

// run runs cmd ("" for a shell) on a new session. stdin is copied without
// waiting for its end: a terminal's stdin never ends by itself.
func run(ctx context.Context, client *ssh.Client, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
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

// Exec runs command (its words joined with spaces, as ssh(1) does), or
// without one a shell: on a remote terminal when stdin is one, else reading
// its commands from stdin.
func Exec(ctx context.Context, client *ssh.Client, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(command) > 0 {
		return run(ctx, client, strings.Join(command, " "), stdin, stdout, stderr)
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return interactiveShell(ctx, client, f, stdout, stderr)
	}
	return run(ctx, client, "", stdin, stdout, stderr)
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
	if err := requestPty(sess, fd); err != nil {
		return err
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	defer term.Restore(fd, state)
	stop := make(chan struct{})
	defer close(stop)
	go followWindowSize(sess, fd, stop)
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

// requestPty asks for a remote terminal of the local one's size and type.
func requestPty(sess *ssh.Session, fd int) error {
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
	return nil
}

// followWindowSize passes local window size changes on until stop closes.
// Polled rather than SIGWINCH: the same code on every OS.
func followWindowSize(sess *ssh.Session, fd int, stop <-chan struct{}) {
	w, h, _ := term.GetSize(fd)
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
}

// Hint is the system-ssh equivalent of `mlstack ssh`, for tools that need it.
func Hint(h Host) string {
	return fmt.Sprintf("ssh -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes %s@%s",
		shellQuote(h.KeyFile), shellQuote(h.KnownHostsFile), LoginUser, h.Name)
}

// shellQuote single-quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
