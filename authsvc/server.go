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
	h = noStore(h)               // inner: auth answers are per-user; /jwks overrides it
	h = httpx.Observe(log, m, h) // outer: request ID, access log, panic recovery, metrics
	return h
}

// noStore marks every /api/auth answer uncacheable (Better Auth sends
// no-store on get-session; we extend it to all, since they carry tokens).
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/auth/") {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers a known path with the wrong method, in JSON
// (ServeMux's own 405 is plain text).
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		httpx.WriteError(w, r, httpx.ErrMethodNotAllowed)
	})
}
