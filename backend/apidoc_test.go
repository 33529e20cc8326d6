package main

import (
	"net/http"
	"testing"
	"time"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/kit/doccheck"
)

// docs/openapi.json documents exactly the /api/v1 operations the backend
// routes, and the real handlers answer each (as a signed-in user with no
// todos, with no body) with a status documented for it.
func TestAPIIsDocumented(t *testing.T) {
	routes := &doccheck.Routes{}
	addRoutes(routes, &deps{todos: todo.NewStore(nil, nil), timeout: time.Second})
	base := newAPI(t)
	c := &http.Client{Timeout: 10 * time.Second}
	doccheck.CheckAPI(t, "/api/v1/", routes, func(method, path string) int {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-User-ID", "docs-user")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	})
}
