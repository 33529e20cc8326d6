// Command authsvc is Gatehouse's authentication service: Better Auth's
// email-and-password wire protocol, sessions in Postgres, and the JWTs the
// proxy verifies.
//
//	authsvc                                  serve (applies pending migrations first)
//	authsvc keys rotate                      rotate the JWT signing key
//	authsvc import-better-auth --from URL    copy users from a Better Auth database
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
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		os.Exit(1)
	}
}
