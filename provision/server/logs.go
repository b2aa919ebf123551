package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// BootstrapLog is where cloud-init writes the output of the bootstrap.
const BootstrapLog = "/var/log/cloud-init-output.log"

// NoConsoleYet says why the console output is empty.
const NoConsoleYet = "no console output yet: EC2 publishes it a few minutes after boot"

// consolePoll is how often following the console output asks for more.
var consolePoll = 15 * time.Second

// Console reads an instance's console output (what EC2 keeps of it).
type Console func(ctx context.Context) (string, error)

// LogOptions say which logs to print and how.
type LogOptions struct {
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

func (o LogOptions) bootstrapPath() string {
	if o.BootstrapLog != "" {
		return o.BootstrapLog
	}
	return BootstrapLog
}

// commands are the remote commands for the bootstrap log and the journal:
// the last tail lines (all with 0), or following from the last ones.
func (o LogOptions) commands(tail int) (bootstrap, journal string) {
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

// PrintLogs prints the bootstrap log and the server's journal over SSH; with
// Follow it interleaves their new lines, prefixed, until ctx ends.
func PrintLogs(ctx context.Context, client *ssh.Client, o LogOptions, stdout, stderr io.Writer) error {
	if o.Follow {
		bootstrap, journal := o.commands(200)
		out := &lineWriter{w: stdout}
		errs := make(chan error, 2)
		go func() { errs <- followSession(ctx, client, bootstrap, out.prefixed("cloud-init | "), stderr) }()
		go func() { errs <- followSession(ctx, client, journal, out.prefixed("mlflow     | "), stderr) }()
		err := errors.Join(<-errs, <-errs)
		if ctx.Err() != nil {
			return nil // Ctrl-C is how following ends
		}
		return err
	}
	bootstrap, journal := o.commands(0)
	fmt.Fprintf(stdout, "==> %s (bootstrap) <==\n", o.bootstrapPath())
	if err := run(ctx, client, bootstrap, nil, stdout, stderr); err != nil {
		return fmt.Errorf("reading %s: %w", o.bootstrapPath(), err)
	}
	fmt.Fprintf(stdout, "\n==> journalctl -u mlflow (tracking server) <==\n")
	if err := run(ctx, client, journal, nil, stdout, stderr); err != nil {
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
	return run(ctx, client, wrapped, pr, stdout, stderr)
}

// PrintConsole prints the console output; with follow it polls for more
// until ctx ends.
func PrintConsole(ctx context.Context, console Console, follow bool, w io.Writer, log Logger) error {
	text, err := console(ctx)
	if err != nil {
		return err
	}
	if text == "" {
		log.Info(NoConsoleYet)
	}
	io.WriteString(w, text)
	for follow {
		if sleep(ctx, consolePoll) != nil {
			return nil // Ctrl-C is how following ends
		}
		next, err := console(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		io.WriteString(w, newOutput(text, next))
		if next != "" {
			text = next
		}
	}
	return nil
}

// newOutput is what next adds to the console output already printed.
func newOutput(old, next string) string {
	switch {
	case strings.HasPrefix(next, old):
		return next[len(old):]
	case next == "":
		return ""
	}
	// EC2 keeps only the latest 64 KiB: the window moved.
	if i := overlap(old, next); i > 0 {
		return next[i:]
	}
	return next
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

// LastLines returns the last n lines of text.
func LastLines(text string, n int) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// BootstrapTail returns the last n lines of the bootstrap log over SSH, and
// where they came from.
func BootstrapTail(ctx context.Context, client *ssh.Client, o LogOptions, n int) (lines []string, source string, err error) {
	cmd, _ := o.commands(n)
	var out, errb bytes.Buffer
	if err := run(ctx, client, cmd, nil, &out, &errb); err != nil {
		return nil, "", fmt.Errorf("reading %s over SSH: %v %s", o.bootstrapPath(), err, strings.TrimSpace(errb.String()))
	}
	return LastLines(out.String(), n), o.bootstrapPath() + " over SSH", nil
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
