// Package browsertest drives Debian's chromium, headless, through the
// DevTools protocol (chromedp), to prove that MLflow's web UI works for a
// real browser: the check the boot test, the browser tests and `mlstack ui`'s
// test run. It never downloads a browser: it runs the one on PATH.
//
// A server certificate is pinned with --ignore-certificate-errors-spki-list,
// which trusts that key for the run and no other (a different certificate
// still fails); made-up public DNS names reach local servers through
// --host-resolver-rules, with no /etc/hosts edit. Chromium runs in a process
// group of its own, with a private temporary profile and HOME, and only the
// environment it needs; Close stops it and every child and proves none is
// left.
package browsertest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is the executable Debian's chromium package puts on PATH.
const Chromium = "chromium"

// Options choose how the browser starts.
type Options struct {
	// Exec is the browser to run; "" is Chromium, found on PATH.
	Exec string
	// PinSPKI are base64 SHA-256 hashes of the public keys to trust for this
	// run (server.SPKIHash of the pinned certificate).
	PinSPKI []string
	// Resolve maps host names to IP addresses, for made-up public names.
	Resolve map[string]string
}

// Browser is one running chromium with one tab.
type Browser struct {
	tab        context.Context
	closeTab   context.CancelFunc
	closeAlloc context.CancelFunc
	pid        int
	dir        string // HOME and profile; removed by Close
	out        *lockedBuffer
	closeOnce  sync.Once
	closeErr   error
}

// Start runs the browser. The browser lives until Close or until ctx ends;
// call Close in every case, it is what proves that nothing is left.
func Start(ctx context.Context, o Options) (*Browser, error) {
	path, err := exec.LookPath(cmp.Or(o.Exec, Chromium))
	if err != nil {
		return nil, fmt.Errorf("no browser: %w (Debian: apt-get install chromium)", err)
	}
	dir, err := os.MkdirTemp("", "mlstack-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser profile: %w", err)
	}
	b := &Browser{dir: dir, out: &lockedBuffer{}}
	profile := filepath.Join(dir, "profile")
	allocCtx, closeAlloc := chromedp.NewExecAllocator(ctx, allocatorOptions(path, dir, profile, o, b.out)...)
	b.tab, b.closeTab = chromedp.NewContext(allocCtx)
	b.closeAlloc = closeAlloc
	// The first run starts the browser and ties it to ctx, not to any
	// shorter step deadline (chromedp's rule).
	if err := chromedp.Do(b.tab); err != nil {
		cerr := b.Close()
		return nil, errors.Join(fmt.Errorf("starting %s: %w%s", path, err, b.tail()), cerr)
	}
	if p := chromedp.FromContext(b.tab).Browser.Process(); p != nil {
		b.pid = p.Pid
	}
	return b, nil
}

func allocatorOptions(path, dir, profile string, o Options, out io.Writer) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1400, 1000),
		// Straight to the server: a proxy from the environment would not
		// know the made-up names.
		chromedp.Flag("no-proxy-server", true),
		// Nothing of this process's environment (AWS keys, passwords) goes
		// to the browser; HOME and the XDG dirs point into the private dir.
		chromedp.NoInheritEnv,
		chromedp.Env("PATH="+os.Getenv("PATH"), "HOME="+dir, "TMPDIR="+dir,
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache")),
		chromedp.CombinedOutput(out),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own group, so Close can stop every child; and killed
			// with the thread that started it if this process dies.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	)
	if len(o.PinSPKI) > 0 {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(o.PinSPKI, ",")))
	}
	if rules := resolverRules(o.Resolve); rules != "" {
		opts = append(opts, chromedp.Flag("host-resolver-rules", rules))
	}
	return opts
}

// resolverRules is the --host-resolver-rules value that maps each host to
// its IP, in a stable order.
func resolverRules(m map[string]string) string {
	var rules []string
	for host, ip := range m {
		rules = append(rules, "MAP "+host+" "+ip)
	}
	sort.Strings(rules)
	return strings.Join(rules, ", ")
}

// PID is the browser's main process, the leader of its process group.
func (b *Browser) PID() int { return b.pid }

// Close stops the browser and every process it started, then removes its
// profile; it fails when a process of it is still alive afterwards.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A graceful close first (chromedp.Cancel), then the allocator's
		// cancel, which kills the main process and waits for it.
		_ = chromedp.Cancel(cctx)
		b.closeTab()
		b.closeAlloc()
		err := b.killLeftovers(10 * time.Second)
		if rerr := os.RemoveAll(b.dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing the browser profile: %w", rerr))
		}
		b.closeErr = err
	})
	return b.closeErr
}

// killLeftovers kills what is left of the browser — its process group, and
// any process whose command line names its private dir (the crash handlers
// leave the group; they name their database there) — until none is alive,
// or fails after wait.
func (b *Browser) killLeftovers(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		if b.pid > 0 {
			_ = syscall.Kill(-b.pid, syscall.SIGKILL)
		}
		left := b.alive()
		if len(left) == 0 {
			return nil
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("browser processes still alive after SIGKILL: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive lists the live (not zombie) processes of the browser: in its group,
// or started with a path in its private dir.
func (b *Browser) alive() []int {
	var pids []int
	mark := []byte(b.dir + string(filepath.Separator))
	for _, p := range processes() {
		if p.state == 'Z' || p.state == 'X' {
			continue // dead; only its parent's wait is missing
		}
		if (b.pid > 0 && p.pgid == b.pid) || bytes.Contains(p.cmdline, mark) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// tail is the end of the browser's own output, for an error.
func (b *Browser) tail() string {
	s := strings.TrimSpace(b.out.String())
	if s == "" {
		return ""
	}
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return "\nchromium said:\n" + s
}

// lockedBuffer is chromium's output, written by chromedp's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
