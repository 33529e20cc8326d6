package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// probe is `backend probe /readyz`: GET the path on this container's own
// loopback listener and succeed only on 200. The kubelet cannot reach a
// loopback listener, and the image has no shell or curl, so the binary is its
// own exec probe.
func probe(ctx context.Context, lookup func(string) (string, bool), args []string) error {
	path := "/readyz"
	if len(args) > 0 {
		path = args[0]
	}
	if path != "/readyz" && path != "/healthz" {
		return fmt.Errorf("probe: want /readyz or /healthz, got %q", path)
	}
	addr, _ := lookup("BACKEND_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("probe: BACKEND_ADDR %q: want host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d", path, resp.StatusCode)
	}
	return nil
}
