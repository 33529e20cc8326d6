package main

import (
	"net/http"

	"gatehouse.dev/kit/httpx"
)

// addRoutes is web's whole surface: the page, its assets, and health. Every
// other path is a JSON 404; there is no SPA fallback, so a typo is visible.
func addRoutes(mux *http.ServeMux, d *deps) {
	for path, a := range d.site.routes() {
		mux.Handle("GET "+path, handleAsset(a)) // GET patterns also match HEAD
		mux.Handle(path, httpx.MethodNotAllowed("GET, HEAD"))
	}
	mux.Handle("GET /healthz", httpx.Healthz())
	mux.Handle("GET /readyz", httpx.Readyz(d.lc, nil)) // no dependencies: ready until draining
	mux.Handle("/", httpx.NotFoundHandler())
}
