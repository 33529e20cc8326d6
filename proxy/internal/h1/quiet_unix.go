//go:build unix

package h1

import (
	"net"
	"syscall"
)

// quiet reports whether a kept-alive connection is still open and has
// nothing to read: a peek that does not wait. net/http's Transport learns
// the same from the reader goroutine it keeps on every idle connection.
func quiet(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false // never kept (canPeek)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	var perr error
	if err := rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		return false
	}
	// EAGAIN: open and silent. No error: a byte (unasked) or end of stream.
	return perr == syscall.EAGAIN
}

// canPeek reports whether quiet can look into nc; a connection it cannot
// see into is not kept, since bytes it held could be read as the next
// request's answer.
func canPeek(nc net.Conn) bool {
	_, ok := nc.(syscall.Conn)
	return ok
}
