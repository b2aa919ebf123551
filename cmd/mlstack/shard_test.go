package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlstack/mlstack/internal/testenv"
)

// The package's tests run each in a process of its own, several at once,
// each process against one of a few private moto servers (one per
// worker). Most tests wait (health polls, timeouts, a server's start) far
// more than they compute: a serial run used under half of one core's
// worth of CPU. They cannot share one process: provision reads the AWS
// endpoint, keys and region from the process environment (t.Setenv, which
// rules out t.Parallel), every test resets its moto to a blank account,
// and urfave/cli's package-level help flag makes two in-process runs at
// once a data race. One process per test keeps each test exactly as it
// was, with its own leak check against a moto nobody else touches.
//
// The parent, the test binary go test starts, lists the tests, starts the
// motos, and runs its own binary once per test (-test.run=^Name$) with
// shardChild set; it prints each child's whole output when the child is
// done, so go test (and -json) sees the usual test lines, one test at a
// time.
const (
	// shardChild marks a child process: it runs its tests itself.
	shardChild = "MLSTACK_TEST_SHARD_CHILD"
	// shardsVar sets how many tests run at once (default: 3 per CPU,
	// where a 2-core run stopped getting faster); 1 runs them all in
	// this one process, as before.
	shardsVar = "MLSTACK_TEST_SHARDS"
	// binaryVar is the mlstack binary the parent built for the children's
	// process tests (binary), built once rather than once per child.
	binaryVar = "MLSTACK_TEST_BINARY"
)

// started is when the parent started: its children get what is left of
// -test.timeout.
var started time.Time

// slowFirst are the tests that took longest (10 s to 80 s of a 540 s
// serial run): they start first, so that none of them begins when the
// rest are nearly done. A name missing here only starts later.
var slowFirst = []string{
	"TestFaultScenarios", "TestPostgresSweep", "TestInterruptReplacement", "TestInterruptPostgres",
	"TestInterrupt", "TestUIInBrowser", "TestTerminalProgress", "TestPostgresStack",
	"TestArtifactsProxied", "TestUsers", "TestPostgresFaults", "TestCredsRotate",
	"TestCredsRotateFreshMachine", "TestDownSaysWhatIsLost", "TestHealthWaitSaysWhy",
}

// runShards runs the tests in child processes when that applies, and
// reports the exit code and true; false means this process runs them
// (a child, no moto, a run the flags make special, or shards set to 1).
func runShards() (int, bool) {
	started = time.Now()
	flag.Parse() // m.Run would; the flags decide whether to shard
	workers := shardCount()
	if os.Getenv(shardChild) != "" || os.Getenv("MLSTACK_TEST_MOTO_URL") == "" || workers < 2 || !shardable() {
		return 0, false
	}
	tests, err := listTests()
	if err != nil {
		fmt.Fprintf(os.Stderr, "shards: %v\n", err)
		return 1, true
	}
	if len(tests) < 2 {
		return 0, false
	}
	workers = min(workers, len(tests))
	p, err := newParent(workers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shards: %v\n", err)
		p.close()
		return 1, true
	}
	defer p.close()
	// Ctrl-C or a kill: the children die with the parent (childAttr),
	// but the motos, started in the background, would stay.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		p.close()
		fmt.Fprintf(os.Stderr, "shards: %v: stopped the motos\n", s)
		os.Exit(1)
	}()
	return testenv.Collected(p.run(orderSlowFirst(tests)), p.skipDir, os.Stderr), true
}

func shardCount() int {
	s := os.Getenv(shardsVar)
	if s == "" {
		return 3 * runtime.NumCPU()
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "shards: %s=%q is not a positive number; running serially\n", shardsVar, s)
		return 1
	}
	return n
}

// shardable: a plain run, or a -run of top-level tests. Listing,
// benchmarks, fuzzing, coverage and profiles stay in one process, where
// their files and output are whole.
func shardable() bool {
	for _, name := range []string{"test.list", "test.bench", "test.fuzz", "test.coverprofile", "test.gocoverdir",
		"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	// A -run naming subtests (TestX/sub, or A/x|B: alternatives first)
	// is a focused run, and one that a child's ^Name$ would not keep.
	return !strings.Contains(flag.Lookup("test.run").Value.String(), "/")
}

// childArgs are this run's test flags for a child that runs test alone:
// its -test.run, the time left of -test.timeout, and no -test.testlogfile
// (go test's log of what the tests read, for its cache: one file, not
// for many writers; without it go test just does not cache the run).
func childArgs(test string) []string {
	var args []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "test.run", "test.testlogfile", "test.list":
			return
		case "test.timeout":
			args = append(args, "-test.timeout="+childTimeout(f.Value.String()))
			return
		}
		if strings.HasPrefix(f.Name, "test.") {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	return append(args, "-test.run=^"+test+"$")
}

// childTimeout is what is left of the run's -test.timeout: a child that
// hangs then panics with its goroutines' stacks, which the parent prints,
// before go test kills the parent (a minute after the timeout) and, with
// it, the child and its buffered output.
func childTimeout(total string) string {
	d, err := time.ParseDuration(total)
	if err != nil || d <= 0 {
		return total
	}
	return max(d-time.Since(started), time.Second).String()
}

// listTests asks a child for the top-level tests -test.run selects.
func listTests() ([]string, error) {
	pattern := cmp.Or(flag.Lookup("test.run").Value.String(), ".")
	cmd := exec.Command(os.Args[0], "-test.list="+pattern)
	cmd.Env = append(os.Environ(), shardChild+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the tests: %w", err)
	}
	var tests []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Test") || strings.HasPrefix(line, "Example") {
			tests = append(tests, strings.TrimSpace(line))
		}
	}
	return tests, nil
}

func orderSlowFirst(tests []string) []string {
	rank := func(name string) int {
		if i := slices.Index(slowFirst, name); i >= 0 {
			return i
		}
		return len(slowFirst)
	}
	slices.SortStableFunc(tests, func(a, b string) int { return rank(a) - rank(b) })
	return tests
}

// parent holds the workers' motos and the shared mlstack binary.
type parent struct {
	motos  []string // one URL per worker
	stops  []func()
	binDir string
	// skipDir collects the children's skips for one banner (testenv).
	skipDir string
	out     sync.Mutex // one child's output at a time on stdout
	closed  sync.Once  // close runs at the end or on a signal, once
}

func newParent(workers int) (*parent, error) {
	p := &parent{motos: make([]string, workers), stops: make([]func(), workers)}
	var err error
	if p.binDir, err = os.MkdirTemp("", "mlstack-bin"); err != nil {
		return p, err
	}
	if p.skipDir, err = os.MkdirTemp("", "mlstack-skips"); err != nil {
		return p, err
	}
	// The build and the motos' starts (a second or two of Python imports
	// each) overlap.
	errs := make([]error, workers+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[workers] = buildBinary(filepath.Join(p.binDir, "mlstack")) })
	for i := range workers {
		wg.Go(func() { p.motos[i], p.stops[i], errs[i] = startMoto() })
	}
	wg.Wait()
	return p, errors.Join(errs...)
}

// close stops the motos, all at once, and removes the binary.
func (p *parent) close() {
	p.closed.Do(p.stopAll)
}

func (p *parent) stopAll() {
	var wg sync.WaitGroup
	for _, stop := range p.stops {
		if stop != nil {
			wg.Go(stop)
		}
	}
	wg.Wait()
	for _, dir := range []string{p.binDir, p.skipDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
}

// run hands the tests to the workers, each with its own moto, and
// returns the exit code: 1 when a child failed. -test.failfast stops
// handing out tests after a failure.
func (p *parent) run(tests []string) int {
	queue := make(chan string)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, moto := range p.motos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for test := range queue {
				if !p.child(test, moto) {
					failed.Store(true)
				}
			}
		}()
	}
	failfast := flag.Lookup("test.failfast").Value.String() == "true"
	for _, test := range tests {
		if failfast && failed.Load() {
			break
		}
		queue <- test
	}
	close(queue)
	wg.Wait()
	if failed.Load() {
		fmt.Println("FAIL")
		return 1
	}
	fmt.Println("PASS")
	return 0
}

// child runs one test in a process of its own against moto, then prints
// its output but for the final PASS or FAIL line, which is the parent's
// to print once. It reports whether the child passed.
func (p *parent) child(test, moto string) bool {
	// Pdeathsig (childAttr) fires when the thread that started the
	// child ends: keep this one while the child runs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], childArgs(test)...)
	cmd.Env = append(os.Environ(), shardChild+"=1", "MLSTACK_TEST_MOTO_URL="+moto,
		binaryVar+"="+filepath.Join(p.binDir, "mlstack"), testenv.SkipDirVar+"="+p.skipDir, childGORACE())
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childAttr()
	err := cmd.Run()
	// The bare PASS or FAIL line that ends a test binary's run is the
	// parent's to print, once: go test -json reads it as the package's
	// result. A test's own log lines are indented, never bare.
	var kept []string
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if line != "PASS\n" && line != "FAIL\n" {
			kept = append(kept, line)
		}
	}
	p.out.Lock()
	defer p.out.Unlock()
	os.Stdout.WriteString(strings.Join(kept, ""))
	if err != nil {
		fmt.Printf("shards: the process that ran %s failed: %v\n", test, err)
		return false
	}
	return true
}

// childGORACE drops the race detector's one-second sleep at exit (there
// for other goroutines' reports; a child's test is over by then): a
// second per test, a tenth of the run on 2 cores. Options the user set
// in GORACE stay.
func childGORACE() string {
	opts := os.Getenv("GORACE")
	if !strings.Contains(opts, "atexit_sleep_ms") {
		opts = strings.TrimSpace(opts + " atexit_sleep_ms=0")
	}
	return "GORACE=" + opts
}
