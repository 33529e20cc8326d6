// Command backend is Gatehouse's todo API. It trusts only the X-User-ID header
// set by the proxy in front of it, and listens on loopback by default so the
// proxy is the only way in.
//
//	backend           serve (applies pending migrations first)
//	backend migrate   apply migrations and exit (a Kubernetes init step)
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "backend: %v\n", err)
		os.Exit(1)
	}
}
