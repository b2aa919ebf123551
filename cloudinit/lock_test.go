package cloudinit

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mlstack/mlstack/templates"
)

// lockEntry is one requirement of the lock.
type lockEntry struct {
	name, version, marker, sha256 string
}

var (
	requirementRE = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)(?: ; (.+))? \\$`)
	hashLineRE    = regexp.MustCompile(`^    --hash=sha256:([0-9a-f]{64})$`)
	installerRE   = regexp.MustCompile(`^#@ (uv|pip) (x86_64|aarch64|any) ([0-9a-f]{64}) (https://files\.pythonhosted\.org/packages/[0-9a-f/]+/([^/]+\.whl))$`)
)

// parsedLock is a lock file read the way mlstack-setup and the installers read it.
type parsedLock struct {
	data       map[string]string // "#@ key value" lines other than installers
	installers map[string][]string
	entries    []lockEntry
}

func parseLock(t *testing.T, text string) parsedLock {
	t.Helper()
	l := parsedLock{data: map[string]string{}, installers: map[string][]string{}}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case installerRE.MatchString(line):
			m := installerRE.FindStringSubmatch(line)
			l.installers[m[1]+" "+m[2]] = m[3:]
		case strings.HasPrefix(line, "#@ "):
			k, v, _ := strings.Cut(strings.TrimPrefix(line, "#@ "), " ")
			l.data[k] = v
		case strings.HasPrefix(line, "#"):
		default:
			m := requirementRE.FindStringSubmatch(line)
			if m == nil || i+1 >= len(lines) || !hashLineRE.MatchString(lines[i+1]) {
				t.Fatalf("lock line %d is not `name==version [; marker] \\` and one sha256 line: %q", i+1, line)
			}
			l.entries = append(l.entries, lockEntry{m[1], m[2], m[3], hashLineRE.FindStringSubmatch(lines[i+1])[1]})
			i++
		}
	}
	return l
}

// evalMarker evaluates the markers scripts/lock/merge.py writes: python_version
// and platform_machine compared with ==, joined by and/or, in parentheses.
func evalMarker(t *testing.T, marker, python, arch string) bool {
	t.Helper()
	toks := regexp.MustCompile(`\(|\)|and|or|(?:python_version|platform_machine) == "[^"]*"`).FindAllString(marker, -1)
	if strings.ReplaceAll(strings.Join(toks, ""), " ", "") != strings.ReplaceAll(marker, " ", "") {
		t.Fatalf("marker %q has more than this evaluator knows", marker)
	}
	pos := 0
	var or func() bool
	atom := func() bool {
		tok := toks[pos]
		pos++
		if tok == "(" {
			v := or()
			pos++ // ")"
			return v
		}
		k, v, _ := strings.Cut(tok, ` == `)
		want := map[string]string{"python_version": python, "platform_machine": arch}[k]
		return strings.Trim(v, `"`) == want
	}
	and := func() bool {
		v := atom()
		for pos < len(toks) && toks[pos] == "and" {
			pos++
			v = atom() && v
		}
		return v
	}
	or = func() bool {
		v := and()
		for pos < len(toks) && toks[pos] == "or" {
			pos++
			v = and() || v
		}
		return v
	}
	v := or()
	if pos != len(toks) {
		t.Fatalf("marker %q: trailing tokens", marker)
	}
	return v
}

// resolve returns, for PYTHON-ARCH, the lock's name -> version (each name once).
func (l parsedLock) resolve(t *testing.T, target string) map[string]string {
	t.Helper()
	python, arch, _ := strings.Cut(target, "-")
	got := map[string]string{}
	for _, e := range l.entries {
		if e.marker != "" && !evalMarker(t, e.marker, python, arch) {
			continue
		}
		if _, dup := got[e.name]; dup {
			t.Errorf("%s: %s is listed twice", target, e.name)
		}
		got[e.name] = e.version
	}
	return got
}

func embeddedLock(t *testing.T) string {
	t.Helper()
	b, err := templates.FS.ReadFile(lockName)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLockMatchesTemplate: the lock pins the MLflow version the template
// installs by default, with boto3 and PostgreSQL's driver, for Ubuntu
// 24.04's Python and the stand-ins', on both architectures, one
// sha256-pinned wheel per package each.
func TestLockMatchesTemplate(t *testing.T) {
	t.Parallel()
	l := parseLock(t, embeddedLock(t))
	if l.data["mlflow"] != DefaultMLflowVersion {
		t.Errorf("the lock's #@ mlflow is %q, DefaultMLflowVersion %s: run scripts/lock.sh", l.data["mlflow"], DefaultMLflowVersion)
	}
	var targets []string
	for _, py := range []string{"3.11", "3.12", "3.13"} {
		for _, arch := range []string{ArchAarch64, ArchX8664} {
			targets = append(targets, py+"-"+arch)
		}
	}
	if got := strings.Fields(l.data["targets"]); !slices.Equal(got, targets) {
		t.Errorf("the lock's targets are %v, want %v", got, targets)
	}
	var first map[string]string
	for _, target := range targets {
		pins := l.resolve(t, target)
		for name, want := range map[string]string{"mlflow": DefaultMLflowVersion, "boto3": "", "psycopg2-binary": "", "uvicorn": "", "flask": ""} {
			if v, ok := pins[name]; !ok || (want != "" && v != want) {
				t.Errorf("%s: the lock pins %s %q, want %q", target, name, v, want)
			}
		}
		if first == nil {
			first = pins
		} else if !slices.Equal(slices.Sorted(maps.Keys(pins)), slices.Sorted(maps.Keys(first))) {
			t.Errorf("%s installs other packages than %s", target, targets[0])
		}
	}
	if len(first) < 50 {
		t.Errorf("the lock holds %d packages per target; mlflow[auth] with boto3 needs about 90", len(first))
	}
}

// TestLockInstallers: uv for each architecture and pip, at the versions
// scripts/lock.sh pins, from PyPI's file host, by sha256.
func TestLockInstallers(t *testing.T) {
	t.Parallel()
	l := parseLock(t, embeddedLock(t))
	script, err := os.ReadFile("../scripts/lock.sh")
	if err != nil {
		t.Fatal(err)
	}
	version := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=([0-9.]+)$`).FindSubmatch(script)
		if m == nil {
			t.Fatalf("scripts/lock.sh sets no %s", name)
		}
		return string(m[1])
	}
	for key, prefix := range map[string]string{
		"uv x86_64":  "uv-" + version("UV_VERSION") + "-py3-none-manylinux",
		"uv aarch64": "uv-" + version("UV_VERSION") + "-py3-none-manylinux",
		"pip any":    "pip-" + version("PIP_VERSION") + "-py3-none-any.whl",
	} {
		inst, ok := l.installers[key]
		if !ok {
			t.Errorf("the lock has no #@ %s line", key)
			continue
		}
		arch := strings.Fields(key)[1]
		if file := inst[2]; !strings.HasPrefix(file, prefix) || (arch != "any" && !strings.Contains(file, arch)) {
			t.Errorf("#@ %s is %s, want %s… for %s", key, file, prefix, arch)
		}
	}
}

// TestLockForArch: the user-data's part of the lock installs, on every
// target of its architecture, exactly what the whole lock installs there,
// and names nothing of the other architecture.
func TestLockForArch(t *testing.T) {
	t.Parallel()
	full := parseLock(t, embeddedLock(t))
	for arch, other := range map[string]string{ArchX8664: ArchAarch64, ArchAarch64: ArchX8664} {
		text, err := lockFor(arch)
		if err != nil {
			t.Fatal(err)
		}
		part := parseLock(t, text)
		if part.data["mlflow"] != DefaultMLflowVersion || part.data["exclude-newer"] != full.data["exclude-newer"] {
			t.Errorf("%s: the data lines changed: %v", arch, part.data)
		}
		if want := "3.11-" + arch + " 3.12-" + arch + " 3.13-" + arch; part.data["targets"] != want {
			t.Errorf("%s: targets %q, want %q", arch, part.data["targets"], want)
		}
		if _, ok := part.installers["uv "+arch]; !ok || len(part.installers) != 2 {
			t.Errorf("%s: installers %v, want uv for %s and pip", arch, slices.Collect(maps.Keys(part.installers)), arch)
		}
		for _, py := range []string{"3.11", "3.12", "3.13"} {
			target := py + "-" + arch
			if got, want := part.resolve(t, target), full.resolve(t, target); !maps.Equal(got, want) {
				t.Errorf("%s: the %s part installs %d packages, the whole lock %d", target, arch, len(got), len(want))
			}
		}
		for _, e := range part.entries {
			if e.marker != "" && !evalMarker(t, e.marker, "3.11", arch) && !evalMarker(t, e.marker, "3.12", arch) &&
				!evalMarker(t, e.marker, "3.13", arch) {
				t.Errorf("the %s part holds %s %s for %s only (%s)", arch, e.name, e.version, other, e.marker)
			}
		}
		if strings.Count(text, "\n# ") > 1 {
			t.Errorf("%s: the part keeps the header prose", arch)
		}

		p := validParams()
		p.Arch = arch
		boot, err := Bootstrap(p)
		if err != nil || len(boot) != 1 || string(boot[0].Body) != text {
			t.Errorf("%s: the bootstrap lock differs from lockFor (%v)", arch, err)
		}
		if rc := parse(t, render(t, p)).Runcmd; len(rc) != 1 || !sameList(rc[0], setupCmd(t, p)) {
			t.Errorf("%s: runcmd %v does not fetch that lock", arch, rc)
		}
	}
}
