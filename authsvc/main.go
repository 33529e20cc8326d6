// Command authsvc is Gatehouse's authentication service: Better Auth's
// email-and-password wire protocol, sessions in Postgres, and the JWTs the
// proxy verifies. `authsvc keys rotate` rotates the JWT signing key.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.LookupEnv, os.Stderr, os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		os.Exit(1)
	}
}
