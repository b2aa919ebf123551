package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mlstack/mlstack/internal/browsertest"
	"github.com/mlstack/mlstack/provision/server"
)

const uiUsage = `usage: boot ui -uri https://HOST:5000 -cert FILE -user U -password-file F
               -experiment E -run R -metric M -value V -out DIR
               [-resolve HOST=IP[,HOST=IP…]] [-timeout 5m] [-step-timeout 1m]`

// uiFlags are boot ui's flags.
type uiFlags struct {
	uri, cert, user, passwordFile string
	experiment, run, metric, out  string
	resolve                       string
	value                         float64
	timeout, stepTimeout          time.Duration
}

func parseUIFlags(args []string) (uiFlags, error) {
	var f uiFlags
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	for name, p := range map[string]*string{"uri": &f.uri, "cert": &f.cert, "user": &f.user, "password-file": &f.passwordFile,
		"experiment": &f.experiment, "run": &f.run, "metric": &f.metric, "out": &f.out, "resolve": &f.resolve} {
		fs.StringVar(p, name, "", name)
	}
	fs.Float64Var(&f.value, "value", math.NaN(), "the metric's value")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "the whole check")
	fs.DurationVar(&f.stepTimeout, "step-timeout", browsertest.DefaultStepTimeout, "each step")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 || f.uri == "" || f.user == "" || f.passwordFile == "" || f.experiment == "" ||
		f.run == "" || f.metric == "" || f.out == "" || math.IsNaN(f.value) {
		return f, errors.New(uiUsage)
	}
	return f, nil
}

// uiCheck opens the MLflow UI at -uri in Debian's chromium, headless, the
// certificate in -cert pinned (trusted for this run alone), and checks that
// it shows the experiment, the run in its run list, and the run's metric
// with its value; the screenshot goes to -out. The password comes from a
// file, so it is on no command line.
func uiCheck(ctx context.Context, args []string) error {
	f, err := parseUIFlags(args)
	if err != nil {
		return err
	}
	opts, err := uiBrowserOptions(f)
	if err != nil {
		return err
	}
	pw, err := os.ReadFile(f.passwordFile)
	if err != nil {
		return fmt.Errorf("reading the password file: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	res, err := browsertest.Check(ctx, opts, browsertest.UICheck{URI: f.uri, User: f.user, Password: strings.TrimRight(string(pw), "\r\n"),
		Experiment: f.experiment, Run: f.run, Metric: f.metric, Value: f.value, OutDir: f.out, StepTimeout: f.stepTimeout})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "boot: the MLflow UI at %s shows experiment %q, run %q and %s = %v (%s; %s); runs/search answered %s; screenshot %s\n",
		f.uri, f.experiment, f.run, f.metric, f.value, time.Since(start).Round(100*time.Millisecond), stepTimes(res.Steps),
		strings.Join(res.RunsSearch, ", "), res.Screenshot)
	return nil
}

// uiBrowserOptions pins -cert (after checking it names the URI's host) and
// maps -resolve's names.
func uiBrowserOptions(f uiFlags) (browsertest.Options, error) {
	var o browsertest.Options
	u, err := url.Parse(f.uri)
	if err != nil || u.Host == "" {
		return o, errors.New("-uri: want https://HOST:PORT")
	}
	if f.cert != "" {
		pemBytes, err := os.ReadFile(f.cert)
		if err != nil {
			return o, fmt.Errorf("-cert: %w", err)
		}
		cert, err := server.ParseCert(pemBytes)
		if err != nil {
			return o, fmt.Errorf("-cert %s: %w", f.cert, err)
		}
		if err := server.Covers(cert, u.Hostname(), time.Now()); err != nil {
			return o, fmt.Errorf("-cert %s does not fit %s: %w", f.cert, u.Hostname(), err)
		}
		o.PinSPKI = []string{server.SPKIHash(cert)}
	} else if u.Scheme == "https" {
		return o, errors.New("-cert: an https URI needs the certificate to pin")
	}
	for _, kv := range strings.Split(f.resolve, ",") {
		if kv == "" {
			continue
		}
		host, ip, ok := strings.Cut(kv, "=")
		if !ok || host == "" || ip == "" {
			return o, fmt.Errorf("-resolve %q: want HOST=IP", kv)
		}
		if o.Resolve == nil {
			o.Resolve = map[string]string{}
		}
		o.Resolve[host] = ip
	}
	return o, nil
}

func stepTimes(steps []browsertest.StepTime) string {
	var parts []string
	for _, s := range steps {
		parts = append(parts, fmt.Sprintf("%s %s", s.Step, s.Took.Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}
