package main

import "gatehouse.dev/kit/httpx"

// addRoutes is the backend's whole API surface. Every /api/v1 route needs the
// proxy's X-User-ID; trailing-slash forms are the same routes.
func addRoutes(mux httpx.Router, d *deps) {
	todos, timeout := d.todos, d.timeout
	user := requireUserID
	list, create := user(handleTodoList(todos, timeout)), user(handleTodoCreate(todos, timeout))
	get, patch, del := user(handleTodoGet(todos, timeout)), user(handleTodoUpdate(todos, timeout)), user(handleTodoDelete(todos, timeout))

	for _, p := range []string{"/api/v1/todos", "/api/v1/todos/{$}"} {
		mux.Handle("GET "+p, list)
		mux.Handle("POST "+p, create)
		mux.Handle(p, user(httpx.MethodNotAllowed("GET, HEAD, POST")))
	}
	for _, p := range []string{"/api/v1/todos/{id}", "/api/v1/todos/{id}/{$}"} {
		mux.Handle("GET "+p, get)
		mux.Handle("PATCH "+p, patch)
		mux.Handle("DELETE "+p, del)
		mux.Handle(p, user(httpx.MethodNotAllowed("GET, HEAD, PATCH, DELETE")))
	}
	mux.Handle("/api/v1/", user(httpx.NotFoundHandler()))
	mux.Handle("GET /healthz", httpx.Healthz())
	mux.Handle("GET /readyz", httpx.Readyz(d.lc, d.ping))
	mux.Handle("/", httpx.NotFoundHandler())
}
