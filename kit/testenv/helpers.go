package testenv

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// FreeAddr returns a loopback host:port for a service under test to listen
// on. It is free now, never handed out before by any test process on this
// machine while that process lives, and outside the kernel's ephemeral range
// (32768 and up), so no outgoing connection can take it before the service
// binds: a port from net.Listen(":0") was given to two services of one stack
// and failed the 20-run reliability series (issue 12).
func FreeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow)
		if ports[port] != nil {
			continue
		}
		// A lock file per port claims it across processes until this one
		// exits (the kernel drops the lock with the process).
		_ = os.MkdirAll(portLockDir, 0o777)
		f, err := os.OpenFile(filepath.Join(portLockDir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			f.Close()
			continue
		}
		ln.Close()
		ports[port] = f
		return addr
	}
	t.Fatalf("testenv: no free loopback port in %d-%d after 1000 tries", portLow, portHigh)
	return ""
}

// The range FreeAddr picks from: below Linux's default ephemeral range, above
// every well-known service port the project could meet (5432, 6379, 8080…).
const (
	portLow     = 20000
	portHigh    = 32000
	portLockDir = "/tmp/gatehouse-test-ports"
)

var (
	portsMu sync.Mutex
	ports   = map[int]*os.File{} // handed out by this process, lock held
)

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
