//go:build !unix

package h1

import "net"

// quiet cannot peek here; RoundTrip retries a connection found closed.
func quiet(net.Conn) bool { return true }
