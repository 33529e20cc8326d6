package main

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// serve runs the API listener (and the metrics one, when configured) until
// ctx ends, then drains: /readyz turns 503 for DRAIN_DELAY, and in-flight
// requests get SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, cfg config, log *zap.Logger, m *httpx.Metrics, d *deps) error {
	sc := httpx.ServeConfig{
		Log: log, Main: httpx.NewServer(cfg.Addr, newServer(log, m, d)), Lifecycle: d.lc,
		DrainDelay: cfg.DrainDelay, ShutdownTimeout: cfg.ShutdownTimeout,
	}
	if cfg.MetricsAddr != "" {
		sc.Metrics = httpx.NewServer(cfg.MetricsAddr, m.Handler())
	}
	log.Info("starting", zap.String("jwt_alg", d.keys.Alg()), zap.String("base_url", cfg.BaseURL),
		zap.Strings("trusted_origins", cfg.TrustedOrigins))
	return httpx.Serve(ctx, sc)
}

// newServer wires the routes and states the middleware order once.
func newServer(log *zap.Logger, m *httpx.Metrics, d *deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var h http.Handler = mux
	h = securityHeaders(h)       // inner: auth answers are per-user; /jwks overrides caching
	h = httpx.Observe(log, m, h) // outer: request ID, access log, panic recovery, metrics
	return h
}

// securityHeaders marks every answer as JSON-only API output: never
// sniffed as HTML, framed, allowed to load anything, or to leak the URL in
// a Referer (OWASP's REST security headers). Every /api/auth answer is also
// uncacheable (Better Auth sends no-store on get-session; we extend it to
// all, since they carry tokens).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		if strings.HasPrefix(r.URL.Path, "/api/auth/") {
			h.Set("Cache-Control", "no-store")
			h.Set("Pragma", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}
