// Command web serves Gatehouse's demo frontend: one static page, its script
// and stylesheet, embedded in the binary. It holds no secrets and talks to no
// one; the browser calls the API on the same origin through the proxy, which
// forwards every path outside /api/ here when WEB_URL is set.
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
		fmt.Fprintf(os.Stderr, "web: %v\n", err)
		os.Exit(1)
	}
}
