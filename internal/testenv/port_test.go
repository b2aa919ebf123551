package testenv

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePort: the port is free: a server can listen on it right away.
func TestFreePort(t *testing.T) {
	p := FreePort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("listening on the free port %d: %v", p, err)
	}
	l.Close()
	if q := FreePort(t); q == 0 {
		t.Error("a second FreePort is 0")
	}
}
