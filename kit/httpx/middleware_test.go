package httpx

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The access log never carries a credential from the path (a password-reset
// link is live for an hour) nor an invented method.
func TestAccessLogRedactsAndBounds(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := Observe(zap.New(core), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/auth/reset-password/SECRETTOKEN123"},
		{"MINVENTED", "/" + strings.Repeat("a", 4000)},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.path, nil))
	}
	for _, e := range logs.All() {
		f := e.ContextMap()
		path, _ := f["path"].(string)
		if strings.Contains(path, "SECRETTOKEN123") {
			t.Errorf("access log path %q carries the reset token", path)
		}
		if len(path) > maxLoggedPath+len("…") {
			t.Errorf("access log path is %d bytes, want at most %d", len(path), maxLoggedPath)
		}
		if m := f["method"]; m != "GET" && m != "OTHER" {
			t.Errorf("access log method %q, want GET or OTHER", m)
		}
	}
	if len(logs.All()) != 2 {
		t.Fatalf("%d log entries, want 2", len(logs.All()))
	}
}

type testKey struct{}

// A service that routes by itself names the route with SetRoute (the access
// log's "route", in place of r.Pattern), and the context derive returns is
// the one its handler sees, still carrying Observe's request ID.
func TestObserveWithContextAndSetRoute(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	derive := func(ctx context.Context) context.Context { return context.WithValue(ctx, testKey{}, "mine") }
	var got any
	var rid string
	h := ObserveWithContext(zap.New(core), nil, derive, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, rid = r.Context().Value(testKey{}), RequestIDFrom(r.Context())
		SetRoute(r.Context(), "api")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if got != "mine" || rid == "" {
		t.Errorf("handler saw value %v and request ID %q, want mine and an ID", got, rid)
	}
	if n := len(logs.All()); n != 1 {
		t.Fatalf("%d log entries, want 1", n)
	}
	if route := logs.All()[0].ContextMap()["route"]; route != "api" {
		t.Errorf("access log route %v, want api", route)
	}
}
