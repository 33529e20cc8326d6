package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/kit/doccheck"
)

// docs/openapi.json documents exactly the /api/auth operations authsvc
// routes, and the real service answers each (a same-origin client without a
// session, with no body) with a status documented for it.
func TestAPIIsDocumented(t *testing.T) {
	routes := &doccheck.Routes{}
	// Handlers are built, never called: metrics are the only dependency
	// their constructors touch.
	addRoutes(routes, &deps{metrics: newAuthMetrics(prometheus.NewRegistry())})
	in := startDefault(t)
	// The status the service answers, not where a redirect leads (the
	// mailed links answer 302).
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	doccheck.CheckAPI(t, "/api/auth/", routes, func(method, path string) int {
		req, err := http.NewRequest(method, in.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "http://localhost:8080")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	})
}
