// Command upstream is the benchmark's fixed upstream: every request gets the
// same ~100-byte JSON body, so a row through a proxy differs from the direct
// row only by the proxy. It also serves a JWKS file (for the proxy's EdDSA
// rows) at /jwks and /api/auth/jwks, the path the proxy derives from
// AUTHSVC_URL when JWKS_URL is unset.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// body is 100 bytes of JSON, about the size of one small API object.
var body = []byte(`{"id":1,"title":"benchmark upstream","completed":false,"user_id":"bench","note":"fixed 100 bytes"}` + "\n")

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "upstream: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	jwksPath := fs.String("jwks", "", "file served at /jwks and /api/auth/jwks (empty: 404)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var jwks []byte
	if *jwksPath != "" {
		b, err := os.ReadFile(*jwksPath)
		if err != nil {
			return err
		}
		jwks = b
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv := &http.Server{
		Addr:              *addr,
		Handler:           handler(jwks),
		ReadHeaderTimeout: 10 * time.Second,
	}
	// The same lifecycle as the services (bind or fail at once, graceful
	// stop on SIGTERM); nothing is logged per request.
	return httpx.Serve(ctx, httpx.ServeConfig{Log: zap.NewNop(), Main: srv, ShutdownTimeout: 5 * time.Second})
}

func handler(jwks []byte) http.Handler {
	bodyLen := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" || r.URL.Path == "/api/auth/jwks" {
			if jwks == nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(jwks)
			return
		}
		// Drain a request body (POST rows) so the connection is reused.
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{bodyLen}
		_, _ = w.Write(body)
	})
}
