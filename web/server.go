package main

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// serve runs the public listener (and the metrics one, when configured)
// until ctx ends, then drains: /readyz turns 503 for DRAIN_DELAY, and
// in-flight requests get SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, cfg config, log *zap.Logger, d *deps) error {
	metrics := httpx.NewMetrics("web")
	sc := httpx.ServeConfig{
		Log:             log,
		Main:            httpx.NewServer(cfg.Addr, newServer(log, metrics, d)),
		Lifecycle:       d.lc,
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}
	if cfg.MetricsAddr != "" {
		sc.Metrics = httpx.NewServer(cfg.MetricsAddr, metrics.Handler())
	}
	return httpx.Serve(ctx, sc)
}

// newServer wires the routes and states the middleware order once. m may be
// nil (no metrics).
func newServer(log *zap.Logger, m *httpx.Metrics, d *deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var h http.Handler = mux
	h = securityHeaders(h)       // inner: every answer, 404s and panics' 500s included
	h = httpx.Observe(log, m, h) // outer: request ID, access log, panic recovery, metrics
	return h
}

// contentSecurityPolicy allows only this origin's own script, style and API
// calls: no inline code, no eval, no plugins, no framing. The page is built
// for it (textContent only, no style attributes), so an injected title can
// never run. img-src allows data: for the favicon fallback browsers try.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the browser hardening headers on every response.
//
// Referrer-Policy is strict-origin-when-cross-origin rather than no-referrer:
// under no-referrer the Fetch standard ("append a request Origin header")
// sends `Origin: null` on unsafe requests whose mode is not "cors" (a plain
// form POST, say), and the proxy and authsvc reject a null Origin on
// cookie-authenticated writes. The page links nowhere else, so nothing leaks.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
