// Command backend is Gatehouse's todo API. It trusts only the X-User-ID header
// set by the proxy in front of it, and listens on loopback by default so the
// proxy is the only way in.
//
//	backend             serve (applies pending migrations first)
//	backend migrate     apply migrations and exit (a Kubernetes init step)
//	backend probe PATH  GET /readyz or /healthz on the own listener (an exec probe)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "backend: %v\n", err)
		os.Exit(1)
	}
}
