package main

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// serve runs the API listener (and the metrics one, when configured) until
// ctx ends, then drains: /readyz turns 503 for DRAIN_DELAY, and in-flight
// requests get SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, cfg config, log *zap.Logger, m *httpx.Metrics, d *deps) error {
	sc := httpx.ServeConfig{
		Log:             log,
		Main:            httpx.NewServer(cfg.Addr, newServer(log, m, d)),
		Lifecycle:       d.lc,
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}
	if cfg.MetricsAddr != "" {
		sc.Metrics = httpx.NewServer(cfg.MetricsAddr, m.Handler())
	}
	return httpx.Serve(ctx, sc)
}

// newServer wires the API: routes inside, then the shared observation stack
// (request ID, access log, panic recovery, metrics) outside.
func newServer(log *zap.Logger, m *httpx.Metrics, d *deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return httpx.Observe(log, m, mux)
}
