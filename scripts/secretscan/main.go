// Command secretscan fails when a secret shows in files that must not hold
// one: logs, outputs, a state dir's files besides the four meant for
// secrets. It finds a secret as stored, cut short, base64-, URL- or
// hex-encoded (internal/secretscan), and never prints one.
//
//	secretscan [-secrets FILE]... [-state-dir DIR]... [-skip NAME]... PATH...
//
//	-secrets FILE    one secret a line
//	-state-dir DIR   an mlstack state dir: its secrets (state.json, the SSH
//	                 keys) are scanned for, and its other files scanned
//	-skip NAME       a file or directory under a PATH not to scan, by base
//	                 name or shell pattern (user-data, *.cfg); repeatable
//	PATH             files and directories to scan (every regular file under)
//
// Exit status: 0 nothing found, 1 a secret was found (one line per
// finding on stderr), 2 usage or read error, or no secret to scan for
// (a scan for nothing proves nothing).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlstack/mlstack/internal/secretscan"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("secretscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var secretFiles, keyFiles, stateDirs, skips list
	fs.Var(&secretFiles, "secrets", "file with one secret a line (repeatable)")
	fs.Var(&keyFiles, "private-key", "PEM private key file, found as its seed or body (repeatable)")
	fs.Var(&stateDirs, "state-dir", "mlstack state dir (repeatable)")
	fs.Var(&skips, "skip", "base name or pattern of a file or directory not to scan (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 && len(stateDirs) == 0 {
		fmt.Fprintln(stderr, "secretscan: nothing to scan: give PATHs or -state-dir")
		return 2
	}
	sc := secretscan.New()
	others, err := load(sc, secretFiles, stateDirs, stderr)
	for _, k := range keyFiles {
		b, rerr := os.ReadFile(k)
		err = errors.Join(err, rerr)
		sc.AddPrivateKey(k, b)
	}
	if err != nil {
		fmt.Fprintf(stderr, "secretscan: %v\n", err)
		return 2
	}
	if sc.Len() == 0 {
		fmt.Fprintln(stderr, "secretscan: no secret to scan for: a scan for nothing proves nothing")
		return 2
	}
	findings, files, err := sc.ScanPaths(append(others, fs.Args()...), skipper(skips, stateDirs))
	for _, f := range findings {
		fmt.Fprintf(stderr, "secretscan: LEAK: %s\n", f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "secretscan: %v\n", err)
		return 2
	}
	if len(findings) > 0 {
		fmt.Fprintf(stderr, "secretscan: FAILED: %d finding(s) in %d files scanned for %d secrets\n", len(findings), files, sc.Len())
		return 1
	}
	fmt.Fprintf(stderr, "secretscan: no secret in %d files (%d secrets in %d forms: as stored, cut short, base64, URL-escaped, hex)\n",
		files, sc.Len(), sc.Patterns())
	return 0
}

// load adds the secrets of the files and state dirs, and returns the state
// dirs' files that must hold none.
func load(sc *secretscan.Scanner, secretFiles, stateDirs []string, stderr io.Writer) (others []string, err error) {
	for _, file := range secretFiles {
		short, err := addLines(sc, file)
		if err != nil {
			return nil, err
		}
		if short > 0 {
			fmt.Fprintf(stderr, "secretscan: not scanning for %d line(s) of %s shorter than %d bytes\n", short, file, secretscan.MinLen)
		}
	}
	for _, dir := range stateDirs {
		if _, err := os.Stat(dir); err != nil {
			return nil, err
		}
		o, err := sc.AddStateDir(dir)
		if err != nil {
			return nil, err
		}
		others = append(others, o...)
	}
	return others, nil
}

// addLines adds each non-empty line of file as a secret; it returns how
// many were too short to scan for.
func addLines(sc *secretscan.Scanner, file string) (short int, err error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; lines.Scan(); n++ {
		if line := lines.Text(); line != "" && !sc.AddString(fmt.Sprintf("secret on line %d of %s", n, file), line) {
			short++
		}
	}
	return short, lines.Err()
}

// skipper skips what -skip names, and the state dirs (load scans their
// files that must hold no secret; the others are meant to).
func skipper(skips, stateDirs []string) func(string) bool {
	var states []string
	for _, d := range stateDirs {
		if abs, err := filepath.Abs(d); err == nil {
			states = append(states, abs)
		}
	}
	return func(path string) bool {
		for _, pat := range skips {
			if ok, err := filepath.Match(pat, filepath.Base(path)); ok || err == nil && filepath.Clean(pat) == filepath.Clean(path) {
				return true
			}
		}
		abs, err := filepath.Abs(path)
		for _, s := range states {
			if err == nil && (abs == s || strings.HasPrefix(abs, s+string(filepath.Separator))) {
				return true
			}
		}
		return false
	}
}
