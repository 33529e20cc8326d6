// Command bareproxy is the floor of proxying in Go: an httputil.ReverseProxy
// with a transport tuned for one busy upstream, and nothing else (no auth, no
// header hygiene, no logging). The benchmark compares our proxy to it, so the
// difference is what our proxy adds, not what net/http costs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bareproxy: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	target := fs.String("target", "", "upstream base URL, e.g. http://127.0.0.1:9000")
	idle := fs.Int("idle", 1024, "MaxIdleConnsPerHost: at least the benchmark's connections, so no connection is closed and redialled")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("-target %q: want an absolute http URL", *target)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        *idle,
		MaxIdleConnsPerHost: *idle, // the default of 2 would redial under 32 connections
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: transport,
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	// The same lifecycle as the services (bind or fail at once, graceful
	// stop on SIGTERM); nothing is logged per request.
	return httpx.Serve(ctx, httpx.ServeConfig{Log: zap.NewNop(), Main: srv, ShutdownTimeout: 5 * time.Second})
}
