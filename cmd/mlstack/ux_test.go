package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mlstack/mlstack/internal/testhooks"
	"github.com/urfave/cli/v2"
)

// runLocal runs the CLI in-process without AWS: help, usage errors.
func runLocal(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"mlstack"}, args...), strings.NewReader(""), &out, &errb)
	recordOutput("mlstack "+strings.Join(args, " "), out.String()+errb.String())
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// parseOnly is the app with every action replaced: running it only parses.
func parseOnly() *cli.App {
	app := newApp(newStreams(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}))
	var strip func([]*cli.Command)
	strip = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.Action = func(*cli.Context) error { return nil }
			strip(c.Subcommands)
		}
	}
	strip(app.Commands)
	return app
}

// words splits a command line as a POSIX shell does (quotes, no
// expansions), up to a redirection or comment.
func words(line string) []string {
	var out []string
	var cur strings.Builder
	quote, inWord := rune(0), false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out, inWord = append(out, cur.String()), false
				cur.Reset()
			}
		case (r == '>' || r == '#') && !inWord:
			return out
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// exampleRe finds the mlstack command of an example line, inside eval "$(…)" too.
var exampleRe = regexp.MustCompile(`mlstack [^")]*`)

// flagLine is a flag in --help: its names, then a placeholder in capitals
// or nothing, then the usage text.
var flagLine = regexp.MustCompile(`^   --[a-z-]+(, -[a-z])?( [A-Z]+( \[ --[a-z-]+ [A-Z]+ \])?)?  +\S`)

// TestHelpReadsWell: every command's --help shows placeholders in capitals
// (never words of the usage text) and examples, and every example parses.
func TestHelpReadsWell(t *testing.T) {
	// Not parallel: it runs the CLI, and two urfave/cli apps running at once
	// race on the package-level help flag that every app applies.
	paths := [][]string{{"creds", "rotate"}, {"users", "add"}, {"users", "list"}, {"users", "remove"}, {"users", "passwd"}}
	for _, c := range parseOnly().Commands {
		if c.Name != "help" {
			paths = append(paths, []string{c.Name})
		}
	}
	for _, p := range paths {
		res := runLocal(t, append(p, "--help")...)
		if res.code != 0 || !strings.Contains(res.stdout, "Examples:") {
			t.Errorf("%v --help: exit %d, no examples:\n%s", p, res.code, res.stdout)
		}
		inExamples := false
		for _, line := range strings.Split(res.stdout, "\n") {
			switch {
			case strings.HasPrefix(line, "   --") && !flagLine.MatchString(line):
				t.Errorf("%v --help: garbled flag line %q", p, line)
			case strings.Count(line, "(default: ") > 1:
				t.Errorf("%v --help: two defaults in %q", p, line)
			case strings.Contains(line, "Examples:"):
				inExamples = true
			case inExamples && strings.TrimSpace(line) == "":
				inExamples = false
			case inExamples:
				ex := exampleRe.FindString(line)
				if err := parseOnly().Run(words(ex)); err != nil || ex == "" {
					t.Errorf("%v --help: example %q does not parse: %v", p, line, err)
				}
			}
		}
	}
}

// TestUsageErrors: flag errors name flags with two dashes and echo what
// was typed; near misses get "did you mean"; a flag before the command is
// shown in the order that works. All exit 2 before any AWS call.
func TestUsageErrors(t *testing.T) {
	// Not parallel: it runs the CLI, and two urfave/cli apps running at once
	// race on the package-level help flag that every app applies.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--stack", "demo", "--stak", "x"}, "unknown flag --stak; did you mean --stack? (see `mlstack up --help`)"},
		{[]string{"statu"}, `unknown command "statu"; did you mean status?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see`},
		{[]string{"creds", "rotat"}, `unknown command "rotat"; did you mean rotate?`},
		{[]string{"down", "--stack", "demo", "--dry-rn"}, "did you mean --dry-run?"},
		{[]string{"up", "--stack", "demo", "--ttl", "100d"}, "--ttl 100d: give at most 90d"},
		{[]string{"up", "--stack", "demo", "--ttl", "2 days"}, "--ttl '2 days': use a duration like 90m, 4h or 2d"},
		{[]string{"up", "--stack", "demo", "--timeout", "soon"}, "--timeout soon: use a duration"},
		{[]string{"down", "--all", "--older-than", "2x"}, "--older-than 2x: use a duration"},
		{[]string{"up", "--stack", "demo", "--yes=maybe"}, `invalid boolean value "maybe" for --yes`},
		{[]string{"env", "--stack", "demo", "--output", "json"}, "env takes --format shell|dotenv|json|github, not --output"},
		{[]string{"completion", "tcsh"}, `completion "tcsh": give bash, zsh or fish`},
		{[]string{"--stack", "demo", "--state-dir", "/tmp/x y", "status"},
			"--stack comes before the command: flags go after it, as in `mlstack status --stack demo --state-dir '/tmp/x y'`"},
	} {
		res := runLocal(t, c.args...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
			t.Errorf("mlstack %s: exit %d, stderr %q; want one line with %q", strings.Join(c.args, " "), res.code, res.stderr, c.want)
		}
		if strings.Contains(res.stderr, " -"+strings.TrimPrefix(c.args[len(c.args)-1], "--")) && strings.HasPrefix(c.args[len(c.args)-1], "--") {
			t.Errorf("mlstack %s: a flag with one dash in %q", strings.Join(c.args, " "), res.stderr)
		}
	}
	// A state directory others can write: refused before anything is read
	// or asked, with the command that fixes it.
	shared := t.TempDir()
	must(t, os.Chmod(shared, 0o777))
	for _, verb := range []string{"env", "ui", "check", "status"} {
		res := runLocal(t, verb, "--stack", "demo", "--state-dir", shared)
		if want := "is writable by others (mode 0777): other users of this machine could plant the files mlstack trusts there; `chmod go-w " +
			shared + "`"; res.code != 2 || !strings.Contains(res.stderr, want) {
			t.Errorf("mlstack %s in a shared state directory: exit %d, stderr %q; want exit 2 with %q", verb, res.code, res.stderr, want)
		}
	}
	// The order it shows is one that parses.
	res := runLocal(t, "--stack", "demo", "--state-dir", "/tmp/x y", "status")
	if err := parseOnly().Run(words(hintWith(t, res.stderr, "mlstack status"))); err != nil {
		t.Errorf("the shown order does not parse: %v", err)
	}
}

// TestCompletion: the bash script loads in bash and completes commands,
// subcommands and visible flags by asking the binary; zsh and fish scripts
// are printed.
func TestCompletion(t *testing.T) {
	// Not parallel: it runs the CLI, and two urfave/cli apps running at once
	// race on the package-level help flag that every app applies.
	bin := binary(t)
	complete := func(words ...string) []string {
		t.Helper()
		script := `source <("$BIN" completion bash) || exit 9
COMP_WORDS=("$BIN" "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_mlstack; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...)
		cmd.Env = append(os.Environ(), "BIN="+bin)
		out, err := cmd.CombinedOutput()
		recordOutput("bash completion", string(out))
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"st"}, "status"},
		{[]string{"cr"}, "creds"},
		{[]string{"creds", ""}, "rotate"},
		{[]string{"up", "--sta"}, "--stack --state-dir"},
		{[]string{"down", "--exp"}, "--expired"},
		{[]string{"up", "--health"}, ""}, // hidden test flags are not offered
	} {
		if got := strings.Join(complete(c.words...), " "); got != c.want {
			t.Errorf("complete %q = %q, want %q", c.words, got, c.want)
		}
	}
	zsh := runLocal(t, "completion", "zsh")
	fish := runLocal(t, "completion", "fish")
	if zsh.code != 0 || !strings.Contains(zsh.stdout, "compdef _mlstack mlstack") || fish.code != 0 {
		t.Fatalf("zsh/fish: %d %d %s%s", zsh.code, fish.code, zsh.stderr, fish.stderr)
	}
	for _, name := range []string{"up", "down", "status", "ls", "env", "creds", "check", "ssh", "logs"} {
		if !strings.Contains(fish.stdout, "-a '"+name+"'") {
			t.Errorf("fish completion lacks %s", name)
		}
	}
}

// TestStdinDevNullIsNoTerminal: /dev/null is a character device but no
// terminal: down refuses without --yes and prints no question into a log.
func TestStdinDevNullIsNoTerminal(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("cron")
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	null, err := os.Open(os.DevNull)
	must(t, err)
	defer null.Close()
	cmd := exec.Command(binary(t), append([]string{"down"}, flags...)...)
	cmd.Stdin = null
	out, _ := cmd.CombinedOutput()
	recordOutput("down </dev/null", string(out))
	if code := cmd.ProcessState.ExitCode(); code != 2 || strings.Contains(string(out), "[y/N]") || !strings.Contains(string(out), "no terminal to ask on") {
		t.Errorf("down </dev/null: exit %d\n%s", code, out)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestOneJSONSchema: up, status and ls print one stack schema with machine
// values; up --no-wait says the health was not checked; an up without
// --ttl still reports the expiry; a dry run prints JSON too; a stack that
// does not exist is exit 1 with empty lists, and no stacks is said on
// stderr.
func TestOneJSONSchema(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("doc")
	plan := e.ok(append([]string{"up", "--dry-run", "--output", "json", "--allow-cidr", allowCIDR}, flags...)...)
	if !strings.HasPrefix(plan.stdout, "{") || !strings.Contains(plan.stdout, `"dry_run": true`) || !strings.Contains(plan.stdout, `"create IAM user mlstack-doc`) {
		t.Errorf("up --dry-run --output json:\n%s", plan.stdout)
	}
	up := decodeStack(t, e.ok(append([]string{"up", "--no-wait", "--output", "json", "--allow-cidr", allowCIDR, "--ttl", "3h"}, flags...)...).stdout)
	st := decodeStack(t, e.ok(append([]string{"status", "--output", "json"}, flags...)...).stdout)
	ls := e.ls()
	if len(ls) != 1 {
		t.Fatalf("ls: %+v", ls)
	}
	for name, d := range map[string]stackDoc{"up": up, "status": st, "ls": ls[0]} {
		if d.Stack != "doc" || d.Account != account || d.Region != testRegion || d.Owner == nil || d.CreatedAt == nil ||
			d.ExpiresAt == nil || d.Instance == nil || d.Instance.Type != "t2.micro" || d.Instance.State != "running" ||
			!strings.HasPrefix(d.Instance.ID, "i-") || d.TrackingURI == nil || len(d.AllowedCIDRs) != 1 || d.AllowedCIDRs[0] != allowCIDR ||
			d.SSH || d.CostPerMonthUSD == nil || !hasResource(d, "security_group", "mlstack-doc") {
			t.Errorf("%s: %+v", name, d)
		}
		for _, r := range d.Resources {
			if !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(r.Kind) || r.ID == "" || r.State == "" {
				t.Errorf("%s: resource %+v: want a machine kind, an id and a state", name, r)
			}
		}
	}
	if up.Health != "not_checked" || st.Health != "unhealthy" || ls[0].Health != "not_checked" {
		t.Errorf("health: up %q, status %q, ls %q", up.Health, st.Health, ls[0].Health)
	}
	// An up without --ttl reports the expiry the stack has, not none.
	again := decodeStack(t, e.ok(append([]string{"up", "--no-wait", "--output", "json", "--allow-cidr", allowCIDR}, flags...)...).stdout)
	if again.ExpiresAt == nil || up.ExpiresAt == nil || !again.ExpiresAt.Equal(*up.ExpiresAt) {
		t.Errorf("re-up without --ttl: expires_at %v, the stack's %v", again.ExpiresAt, up.ExpiresAt)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)

	none := e.mlstack(append([]string{"status", "--output", "json"}, flags...)...)
	d := decodeStack(t, none.stdout)
	if none.code != 1 || d.Resources == nil || len(d.Resources) != 0 || d.AllowedCIDRs == nil || d.Instance != nil ||
		!strings.Contains(none.stderr, "stack doc does not exist") {
		t.Errorf("status of no stack: exit %d %+v\n%s", none.code, d, none.stderr)
	}
	for _, args := range [][]string{{"ls"}, {"ls", "--output", "json"}} {
		res := e.ok(args...)
		if strings.TrimSpace(res.stdout) != map[bool]string{true: "[]", false: ""}[len(args) > 1] || !strings.Contains(res.stderr, "no stacks in "+testRegion) {
			t.Errorf("%v of nothing: stdout %q, stderr %q", args, res.stdout, res.stderr)
		}
	}
	e.assertNothingLeft()
}

// TestSweepFlagsAsTyped: --older-than takes days as --ttl does.
func TestSweepFlagsAsTyped(t *testing.T) {
	e := newEnv(t)
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("young")...)...)
	res := e.ok("down", "--all", "--older-than", "2d", "--dry-run", "--state-dir", e.stateDir)
	if strings.Contains(res.stdout, "young") || !strings.Contains(res.stderr, "no matching stacks") {
		t.Errorf("--older-than 2d:\n%s%s", res.stdout, res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, e.stackFlags("young")...)...)
	e.assertNothingLeft()
}

// TestValidatesBeforeCreating: a private --allow-cidr warns; a region that
// does not exist and an MLflow version PyPI does not have are refused
// before anything is created.
func TestValidatesBeforeCreating(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("valid")
	res := e.ok(append([]string{"up", "--dry-run", "--allow-cidr", "10.0.0.1"}, flags...)...)
	if !strings.Contains(res.stderr, "! --allow-cidr 10.0.0.1/32 holds no public address") {
		t.Errorf("private CIDR:\n%s", res.stderr)
	}
	if res := e.ok(append([]string{"up", "--dry-run", "--allow-cidr", allowCIDR, "--mlflow-version", "3.6.0"}, flags...)...); strings.Contains(res.stderr, "PyPI") {
		t.Errorf("a release PyPI has: %s", res.stderr)
	}
	for _, c := range []struct {
		args  []string
		want  string
		calls string
	}{
		{[]string{"--region", "eu-west-9"}, "region eu-west-9 does not exist (aws: ", "ec2 DescribeRegions"},
		{[]string{"--mlflow-version", "3.99.0"}, "--mlflow-version 3.99.0: PyPI has no such MLflow release", ""},
	} {
		e.rec.reset()
		res := e.mlstack(append(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, c.args...), flags...)...)
		var calls []string
		for _, call := range e.rec.calls() {
			calls = append(calls, call.Service+" "+call.Action)
		}
		if res.code != 2 || !strings.Contains(res.stderr, c.want) || strings.Join(calls, ",") != c.calls {
			t.Errorf("up %v: exit %d, calls %v: %s", c.args, res.code, calls, res.stderr)
		}
	}
	e.assertNothingLeft()
}

// TestNoLocalLeftovers: down, a status of a stack that never existed and
// a failed credential check leave no lock file and no empty folder.
func TestNoLocalLeftovers(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("tidy")
	empty := func(what string) {
		t.Helper()
		entries, err := os.ReadDir(e.stateDir)
		must(t, err)
		if len(entries) != 0 {
			t.Errorf("after %s the state dir holds %v", what, entries)
		}
	}
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	empty("down")
	e.mlstack(append([]string{"status"}, flags...)...)
	empty("status of no stack")
	e.mlstack(append([]string{"down", "--yes"}, e.stackFlags("never")...)...)
	empty("down of no stack")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")
	if res := e.mlstack(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, e.stackFlags("probe")...)...); res.code != 2 {
		t.Fatalf("up without credentials: exit %d: %s", res.code, res.stderr)
	}
	empty("a failed credential check")
	e.assertNothingLeft()
}

// TestTerminalProgress: on a terminal (script(1)) every wait is a live
// line counting seconds, in colour unless NO_COLOR; off a terminal the
// same run prints plain lines, no colour, nothing redrawn.
func TestTerminalProgress(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("live")
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	e.publishNow("live")
	var asked atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if asked.Add(1) < 3 { // healthy from the third poll: about 3 s
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer slow.Close()
	// The built binary (a test build) takes the stand-in as a flag; the
	// in-process run below gets it in its context.
	up := append([]string{"up", "--allow-cidr", allowCIDR}, flags...)
	onTTY := func(term string) string {
		t.Helper()
		asked.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd, stdin, out := onTerminal(ctx, t, term, append(up, "--health-url", slow.URL)...)
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("up on a terminal: %v\n%s", err, out)
		}
		return out.String()
	}
	color := onTTY("xterm")
	if !strings.Contains(color, "waiting for the tracking server at "+slow.URL) || !strings.Contains(color, "(1s)") ||
		!strings.Contains(color, "\r") || !strings.Contains(color, "\x1b[36m•") || !strings.Contains(color, "the tracking server answers (after") {
		t.Errorf("terminal:\n%q", color)
	}
	t.Setenv("NO_COLOR", "1")
	plainTTY := onTTY("xterm")
	if strings.Contains(plainTTY, "\x1b[") || !strings.Contains(plainTTY, "(1s)") {
		t.Errorf("terminal with NO_COLOR:\n%q", plainTTY)
	}
	asked.Store(0)
	os.Unsetenv("NO_COLOR")
	res := e.okWith(testhooks.Hooks{HealthURL: slow.URL}, up...)
	if strings.ContainsAny(res.stderr, "\r\x1b") || !strings.Contains(res.stderr, "• waiting for the tracking server") ||
		!strings.Contains(res.stderr, "• the tracking server answers (after") {
		t.Errorf("no terminal:\n%q", res.stderr)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}

// TestDownSaysWhatIsLost: before asking, down counts the runs in the real
// MLflow server's database and the artifacts in the bucket.
func TestDownSaysWhatIsLost(t *testing.T) {
	e := newEnv(t)
	flags := e.stackFlags("lose")
	e.ok(append([]string{"up", "--no-wait", "--allow-cidr", allowCIDR}, flags...)...)
	st := readState(t, filepath.Join(e.stateDir, "lose"))
	srv := mlflowServer(t, st.MLflowPassword)
	post := func(path, body string) string {
		req, _ := http.NewRequest(http.MethodPost, srv+"/api/2.0/mlflow/"+path, strings.NewReader(body))
		req.SetBasicAuth("admin", st.MLflowPassword)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, resp.Status, b.String())
		}
		return b.String()
	}
	exp := regexp.MustCompile(`"experiment_id":\s*"(\d+)"`).FindStringSubmatch(post("experiments/create", `{"name":"lose"}`))[1]
	for range 2 {
		post("runs/create", fmt.Sprintf(`{"experiment_id":%q}`, exp))
	}
	for i, body := range []string{"model", "metrics!"} {
		_, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("mlstack-lose-123456789012-eu-west-3-an"),
			Key: aws.String(fmt.Sprintf("artifacts/%s/%d", exp, i)), Body: strings.NewReader(body)})
		must(t, err)
	}
	code, out := answerOnTerminal(t, "n", append(append([]string{"down"}, flags...), "--tracking-uri", srv)...)
	if code != 2 || !strings.Contains(out, "2 runs in 2 experiments in the server's database") ||
		!strings.Contains(out, "2 artifact files (13 bytes, every version) in S3 bucket mlstack-lose-") || !strings.Contains(out, "lost for good") {
		t.Errorf("down asked without saying what is lost: exit %d\n%s", code, out)
	}
	e.ok(append([]string{"down", "--yes"}, flags...)...)
	e.assertNothingLeft()
}
