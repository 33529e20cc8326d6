package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"gatehouse.dev/kit/logging"
)

// BenchmarkHandler sends requests through the whole proxy handler (request
// ID, access log to io.Discard at info, routing, token check, rate limit,
// ReverseProxy) to an in-process echo upstream over loopback TCP. It is the
// number the per-piece optimisations add up to.
func BenchmarkHandler(b *testing.B) { benchHandler(b, nil) }

// BenchmarkHandlerRoutesFile is BenchmarkHandler with a routes file that
// routes like the built-in table (route lookup, per-route chains), to show
// what the file costs a request.
func BenchmarkHandlerRoutesFile(b *testing.B) {
	benchHandler(b, func(h *harness) string {
		return "upstreams:\n  app: " + h.backend.URL + "\n  auth: " + h.authsvc.URL + `
routes:
  - {prefix: /api/auth/, upstream: auth, auth: none, rate_limit: auth}
  - {prefix: /api/, upstream: app}
  - {prefix: /static/, upstream: app, auth: none}
  - {prefix: /events/, upstream: app, timeout: 1h}
`
	})
}

func benchHandler(b *testing.B, routes func(*harness) string) {
	log, err := logging.New(io.Discard, "info", "proxy")
	if err != nil {
		b.Fatal(err)
	}
	h := newHarness(b, harnessOpt{log: log, routes: routes, env: map[string]string{"AUTH_GENERAL_RATE_LIMIT": "100000/s"}})
	ed := h.token("EdDSA", "bench-user")
	hs := h.token("HS256", "bench-user")
	for _, bc := range []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"api/EdDSA", "/api/v1/todos", http.Header{"Authorization": {"Bearer " + ed}}, 200},
		{"api/HS256", "/api/v1/todos", http.Header{"Authorization": {"Bearer " + hs}}, 200},
		{"api/cookie", "/api/v1/todos", http.Header{"Cookie": {"theme=dark; better-auth.access_token=" + ed}}, 200},
		{"auth", "/api/auth/get-session", http.Header{"Cookie": {"better-auth.session_token=s"}}, 200},
		{"rejected", "/api/v1/todos", http.Header{"Authorization": {"Bearer a.b.c"}}, 401},
		{"healthz", "/healthz", nil, 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", bc.path, nil)
				r.RemoteAddr = "198.51.100.23:5555"
				for k, v := range bc.header {
					r.Header[k] = v
				}
				r.Header.Set("Accept", "application/json")
				r.Header.Set("User-Agent", "bench")
				w := httptest.NewRecorder()
				h.handler.ServeHTTP(w, r)
				if w.Code != bc.want {
					b.Fatalf("status %d, want %d: %s", w.Code, bc.want, w.Body)
				}
			}
		})
	}
}

// BenchmarkRouteLookup is the routes file's per-request lookup alone, on a
// table of 20 prefixes, for a path that matches the last (shortest) one.
func BenchmarkRouteLookup(b *testing.B) {
	t := &routeTable{}
	for i := range 19 {
		t.routes = append(t.routes, &route{routeEntry: routeEntry{prefix: "/service-" + strconv.Itoa(i) + "/v1/"}})
	}
	t.routes = append(t.routes, &route{routeEntry: routeEntry{prefix: "/"}})
	b.ReportAllocs()
	for b.Loop() {
		if t.lookup("/api/v1/todos/123") == nil {
			b.Fatal("no match")
		}
	}
}
