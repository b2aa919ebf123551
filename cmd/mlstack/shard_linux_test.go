package main

import "syscall"

// childAttr ends a child with the parent: go test kills only the process
// it started when the run times out or is interrupted.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
