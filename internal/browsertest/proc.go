package browsertest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// proc is one process as /proc shows it.
type proc struct {
	pid, pgid int
	state     byte
	cmdline   []byte // NUL-separated, NUL-terminated
}

// processes lists the processes of this machine's /proc (Linux, where
// Debian's chromium runs). Processes that end while it reads are left out.
func processes() []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid, filepath.Join("/proc", e.Name()))
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// readProc reads state and process group from /proc/PID/stat: "pid (comm)
// state ppid pgrp …", where comm may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func readProc(pid int, dir string) (proc, bool) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return proc{}, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return proc{}, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return proc{}, false
	}
	pgid, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return proc{}, false
	}
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	return proc{pid: pid, pgid: pgid, state: f[0][0], cmdline: cmdline}, true
}
