package main

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// newServer wires the routes and states the middleware order once.
func newServer(log *zap.Logger, m *httpx.Metrics, lc *httpx.Lifecycle, d *deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d, lc)
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
