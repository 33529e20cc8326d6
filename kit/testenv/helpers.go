package testenv

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// service under test to listen on. Another process may take it first; the
// window is small and a failed bind fails the test loudly.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: no free loopback port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// LogBuffer is an io.Writer that a service's logger and the test may share:
// the service writes while the test reads String.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
