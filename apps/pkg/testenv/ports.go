package testenv

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// handedOut remembers every port this process returned, so two helpers
// running at once in one test binary never get the same one even when the
// first has not bound it yet.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: the
// kernel picks it (listen on port 0), the listener is closed and the port is
// handed to the caller to bind. Another process may still take it in
// between; the server helpers in this package detect a failed bind and retry
// on a new port.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !handedOut[port] {
			handedOut[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("finding a free port: the kernel kept returning ports already handed out")
}
