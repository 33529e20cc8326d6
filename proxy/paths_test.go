package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Request lines sent raw over TCP, since Go's client would clean them. None
// may reach the backend, or authsvc on a path that is not really its own.
func TestPathTricksNeverReachBackendWithoutToken(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, target := range []string{
		"/api/auth/../v1/todos",
		"/api/auth/%2e%2e/v1/todos",
		"/api/auth/%2E%2E/v1/todos",
		"/api/auth/.%2e/v1/todos",
		"/api/auth%2f..%2fv1/todos",
		"/api/auth/..%2fv1/todos",
		"/api/auth/..%5cv1/todos",
		"/api/auth/..\\v1/todos",
		"/api/auth/%00/../v1/todos",
		"/api/auth/%252e%252e/v1/todos",
		"//api/v1/todos",
		"/api//v1/todos",
		"/api/./v1/todos",
		"/api/auth/./../v1/todos",
		"/x/../api/v1/todos",
		"/%2e%2e/api/v1/todos",
		"/API/v1/todos",
		"/api/v1/todos/..",
		"http://gate.example/api/auth/../v1/todos",
	} {
		t.Run(target, func(t *testing.T) {
			code, body := rawRequest(t, h.addr(), "GET "+target+" HTTP/1.1\r\nHost: gate.example\r\nConnection: close\r\n\r\n")
			switch code {
			case http.StatusBadRequest, http.StatusNotFound, http.StatusUnauthorized:
			default:
				t.Errorf("status %d: %s", code, body)
			}
		})
	}
	if n := h.backend.count(); n != 0 {
		t.Errorf("backend reached %d times without a token", n)
	}
	if n := h.authsvc.count(); n != 0 {
		t.Errorf("authsvc reached %d times by a path trick", n)
	}
}

func TestNULInRequestLineRefused(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	code, _ := rawRequest(t, h.addr(), "GET /api/auth/\x00/../v1/todos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", code)
	}
	if h.backend.count()+h.authsvc.count() != 0 {
		t.Error("an upstream was reached")
	}
}

// With a token, a canonical path is forwarded byte for byte: the string the
// route was decided on is the string the backend gets.
func TestSamePathIsForwarded(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	tok := h.token("EdDSA", "u1")
	for _, target := range []string{"/api/v1/todos", "/api/v1/todos/", "/api/v1/todos/42?x=%2F..%2F", "/api/v1/a%20b", "/api"} {
		code, body := rawRequest(t, h.addr(), "GET "+target+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")
		if code != 200 {
			t.Fatalf("%s: status %d: %s", target, code, body)
		}
		if got := h.backend.last(t).RequestURI; got != target {
			t.Errorf("forwarded %q, want %q", got, target)
		}
	}
	// A traversal attempt with a valid token is still refused, not resolved.
	code, _ := rawRequest(t, h.addr(), "GET /api/v1/todos/../../auth/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")
	if code != http.StatusBadRequest {
		t.Errorf("traversal with token: %d, want 400", code)
	}
}

func TestHealthAnsweredLocally(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, p := range []string{"/healthz", "/readyz"} {
		w := h.serve(httptest.NewRequest("GET", p, nil))
		if w.Code != 200 {
			t.Errorf("%s: %d %s", p, w.Code, w.Body)
		}
	}
	if w := h.serve(httptest.NewRequest("POST", "/healthz", nil)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", w.Code)
	}
	if h.backend.count()+h.authsvc.count() != 0 {
		t.Error("health checks were forwarded")
	}
}

func TestNotFoundWithoutWeb(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, p := range []string{"/", "/index.html", "/apix"} {
		w := h.serve(httptest.NewRequest("GET", p, nil))
		if w.Code != 404 || !strings.Contains(w.Body.String(), `"NOT_FOUND"`) {
			t.Errorf("%s: %d %s", p, w.Code, w.Body)
		}
	}
}

func TestWebGetsNoCredentials(t *testing.T) {
	web := newEcho(t)
	h := newHarness(t, harnessOpt{env: map[string]string{"WEB_URL": web.URL}})
	r := httptest.NewRequest("GET", "/app/index.html", nil)
	r.Header.Set("Authorization", "Bearer x")
	r.Header.Set("Cookie", accessCookie+"=t; theme=dark")
	r.Header.Set("X-User-Id", "victim")
	if w := h.serve(r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := web.last(t)
	if got.Path != "/app/index.html" || got.Header.Get("Authorization") != "" || got.Header.Get("Cookie") != "theme=dark" || got.Header.Get("X-User-Id") != "" {
		t.Errorf("web got path %q headers %v", got.Path, got.Header)
	}
}
