//go:build !unix

package h1

import "net"

// quiet cannot peek here.
func quiet(net.Conn) bool { return false }

// canPeek is false here: no connection is kept for another request.
func canPeek(net.Conn) bool { return false }
