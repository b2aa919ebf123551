package provision

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
)

// BootstrapLog is where cloud-init writes the output of the bootstrap.
const BootstrapLog = "/var/log/cloud-init-output.log"

// consoleAPI is the part of EC2 the console-output fallback needs.
type consoleAPI interface {
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
}

// consolePoll is how often `logs --follow` asks EC2 for new console output.
var consolePoll = 15 * time.Second

// LogsOptions are what `mlstack logs` adds to Config.
type LogsOptions struct {
	Remote
	Follow bool
	// BootstrapLog and JournalCommand override the remote log file and the
	// server-journal command (tests); empty means the real ones.
	BootstrapLog   string
	JournalCommand string
}

// asRoot runs a command as root: the Ubuntu login user has passwordless
// sudo, and root (a test server) needs none.
func asRoot(cmd string) string {
	return `if [ "$(id -u)" = 0 ]; then exec ` + cmd + `; else exec sudo -n ` + cmd + `; fi`
}

func (o LogsOptions) bootstrapPath() string {
	if o.BootstrapLog != "" {
		return o.BootstrapLog
	}
	return BootstrapLog
}

// logCommands are the remote commands for the bootstrap log and the journal.
func (o LogsOptions) logCommands(tail int) (bootstrap, journal string) {
	path := o.bootstrapPath()
	switch {
	case o.Follow:
		bootstrap = fmt.Sprintf("tail -n %d -F %s", max(tail, 1), shellQuote(path))
		journal = fmt.Sprintf("journalctl -u mlflow --no-pager -n %d -f", max(tail, 1))
	case tail > 0:
		bootstrap = fmt.Sprintf("tail -n %d %s", tail, shellQuote(path))
		journal = fmt.Sprintf("journalctl -u mlflow --no-pager -n %d", tail)
	default:
		bootstrap = "cat " + shellQuote(path)
		journal = "journalctl -u mlflow --no-pager"
	}
	bootstrap, journal = asRoot(bootstrap), asRoot(journal)
	if o.JournalCommand != "" {
		journal = o.JournalCommand
	}
	return bootstrap, journal
}

// Logs prints the bootstrap log and the server's journal over SSH; without
// SSH it prints the instance's console output from EC2.
func Logs(ctx context.Context, c Config, o LogsOptions) error {
	t, err := findTarget(ctx, c)
	if err != nil {
		return err
	}
	return t.logs(ctx, o, c.Out, c.Log)
}

func (t *target) logs(ctx context.Context, o LogsOptions, stdout, stderr io.Writer) error {
	log := newProgress(stderr)
	if why := t.sshReady(); why != "" {
		log.info("%s", why)
		log.info("showing the console output of %s from EC2 instead: cloud-init's output, not the server's journal", t.id)
		return consoleLogs(ctx, t.s.ec2, t.id, o.Follow, stdout, log)
	}
	client, err := t.dial(ctx, o.Remote)
	var mismatch *HostKeyMismatchError
	if errors.As(err, &mismatch) {
		return err // never fall back quietly from a wrong host key
	}
	if err != nil {
		log.warn("%v", err)
		log.info("showing the console output of %s from EC2 instead", t.id)
		return consoleLogs(ctx, t.s.ec2, t.id, o.Follow, stdout, log)
	}
	defer client.Close()
	if o.Follow {
		bootstrap, journal := o.logCommands(200)
		out := &lineWriter{w: stdout}
		err := parallel(
			func() error { return followSession(ctx, client, bootstrap, out.prefixed("cloud-init | "), stderr) },
			func() error { return followSession(ctx, client, journal, out.prefixed("mlflow     | "), stderr) },
		)
		if ctx.Err() != nil {
			return nil // Ctrl-C is how following ends
		}
		return err
	}
	bootstrap, journal := o.logCommands(0)
	fmt.Fprintf(stdout, "==> %s (bootstrap) <==\n", o.bootstrapPath())
	if err := runSession(ctx, client, bootstrap, nil, stdout, stderr); err != nil {
		return fmt.Errorf("reading %s: %w", o.bootstrapPath(), err)
	}
	fmt.Fprintf(stdout, "\n==> journalctl -u mlflow (tracking server) <==\n")
	if err := runSession(ctx, client, journal, nil, stdout, stderr); err != nil {
		return fmt.Errorf("reading the mlflow journal: %w", err)
	}
	return nil
}

// followSession runs a never-ending command (tail -F, journalctl -f) until
// ctx ends. The command is tied to the session's stdin: when ctx ends stdin
// is closed and a watcher kills the command. Neither a signal request
// (OpenSSH refuses it in some setups: "session signalling requires privilege
// separation") nor closing the connection would stop it without a pty, and
// a pty would merge stderr and colour journalctl's output.
func followSession(ctx context.Context, client *ssh.Client, cmd string, stdout, stderr io.Writer) error {
	// An asynchronous list reads /dev/null unless told otherwise, so the
	// watcher reads the session's stdin through fd 3; it keeps no output
	// open, so the session ends as soon as the command does.
	wrapped := "exec 3<&0; (" + cmd + ") </dev/null & p=$!; " +
		"(cat <&3 >/dev/null 2>&1; kill $p 2>/dev/null) >/dev/null 2>&1 & wait $p"
	pr, pw := io.Pipe()
	go func() {
		<-ctx.Done()
		pw.Close()
	}()
	return runSession(ctx, client, wrapped, pr, stdout, stderr)
}

// consoleOutput returns the instance's console output, decoded.
func consoleOutput(ctx context.Context, api consoleAPI, id string) (string, error) {
	out, err := api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("reading the console output of %s: %w", id, err)
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return "", fmt.Errorf("console output of %s is not base64: %w", id, err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}

const noConsoleYet = "no console output yet: EC2 publishes it a few minutes after boot"

// consoleLogs prints the console output; with follow it polls for more.
func consoleLogs(ctx context.Context, api consoleAPI, id string, follow bool, w io.Writer, log *progress) error {
	text, err := consoleOutput(ctx, api, id)
	if err != nil {
		return err
	}
	if text == "" {
		log.info(noConsoleYet)
	}
	io.WriteString(w, text)
	for follow {
		if sleep(ctx, consolePoll) != nil {
			return nil // Ctrl-C is how following ends
		}
		next, err := consoleOutput(ctx, api, id)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(next, text):
			io.WriteString(w, next[len(text):])
		case next != "":
			// EC2 keeps only the latest 64 KiB: the window moved.
			if i := overlap(text, next); i > 0 {
				io.WriteString(w, next[i:])
			} else {
				io.WriteString(w, next)
			}
		}
		if next != "" {
			text = next
		}
	}
	return nil
}

// overlap finds where next continues old: the end of old's last line in next.
func overlap(old, next string) int {
	lines := strings.Split(strings.TrimRight(old, "\n"), "\n")
	last := lines[len(lines)-1]
	if last == "" {
		return 0
	}
	if i := strings.LastIndex(next, last+"\n"); i >= 0 {
		return i + len(last) + 1
	}
	return 0
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// bootstrapTail returns the last n lines of the bootstrap log, over SSH when
// it is open, else from the console output, and where they came from.
func bootstrapTail(ctx context.Context, t *target, o LogsOptions, n int, log *progress) ([]string, string, error) {
	if why := t.sshReady(); why == "" {
		client, err := t.dial(ctx, o.Remote)
		var mismatch *HostKeyMismatchError
		if errors.As(err, &mismatch) {
			return nil, "", err
		}
		if err != nil {
			log.warn("%v", err)
		} else {
			defer client.Close()
			cmd, _ := o.logCommands(n)
			var out, errb bytes.Buffer
			err := runSession(ctx, client, cmd, nil, &out, &errb)
			if err == nil {
				return lastLines(out.String(), n), o.bootstrapPath() + " over SSH", nil
			}
			log.warn("reading %s over SSH: %v %s", o.bootstrapPath(), err, strings.TrimSpace(errb.String()))
		}
	}
	text, err := consoleOutput(ctx, t.s.ec2, t.id)
	if err != nil {
		return nil, "", err
	}
	return lastLines(text, n), "the instance console output from EC2", nil
}

// explainUnhealthy turns up's health-wait timeout into a diagnosis: the last
// lines of the bootstrap log and what to do next.
func explainUnhealthy(ctx context.Context, s *session, sd stateDir, inst *ec2types.Instance, c Config, hk *hostKey, cause error, log *progress) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w\nthe stack exists; run `mlstack up` again to keep waiting, or `mlstack status`", cause)
	}
	t := &target{stack: c.Stack, sd: sd, s: s, id: aws.ToString(inst.InstanceId), inst: inst, host: trackingHost(inst), sshOpen: c.SSH, hostKey: hk}
	t.haveKeys = hk != nil && fileExists(sd.SSHKeyFile())
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const n = 25
	lines, source, err := bootstrapTail(dctx, t, LogsOptions{}, n, log)
	switch {
	case err != nil:
		log.warn("could not read the bootstrap log: %v", err)
	case len(lines) == 0:
		log.warn("the bootstrap log is empty so far (%s); %s", source, noConsoleYet)
	default:
		log.warn("last %d lines of the bootstrap log (%s):", len(lines), source)
		for _, l := range lines {
			log.info("| %s", strings.TrimRight(l, "\r"))
		}
	}
	more := "`mlstack logs --stack " + c.Stack + "` prints the whole bootstrap log and the server journal"
	if !c.SSH {
		more = "`mlstack up --stack " + c.Stack + " --ssh` opens SSH, then `mlstack logs --stack " + c.Stack +
			"` prints the whole bootstrap log and the server journal (without SSH: the console output only)"
	}
	return fmt.Errorf("%w\nthe stack exists. Next: %s; `mlstack up --stack %s` keeps waiting; "+
		"`mlstack down --stack %s` removes everything", cause, more, c.Stack, c.Stack)
}

// lineWriter interleaves whole lines from concurrent writers.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

type prefixWriter struct {
	lw     *lineWriter
	prefix string
	buf    []byte
}

func (l *lineWriter) prefixed(prefix string) io.Writer { return &prefixWriter{lw: l, prefix: prefix} }

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.lw.mu.Lock()
		_, err := fmt.Fprintf(p.lw.w, "%s%s\n", p.prefix, p.buf[:i])
		p.lw.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
}
