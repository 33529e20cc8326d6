package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBackendUnreachableIs502(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	h.backend.Close()
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.Header.Set("Authorization", "Bearer "+h.token("EdDSA", "u1"))
	w := h.serve(r)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), `"BAD_GATEWAY"`) || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("status %d %s", w.Code, w.Body)
	}
	if w := h.serve(httptest.NewRequest("GET", "/readyz", nil)); w.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with backend down: %d", w.Code)
	}
}

func TestBackendTooSlowIs504(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"UPSTREAM_TIMEOUT": "100ms"}})
	release := make(chan struct{})
	defer close(release)
	h.backend.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.Header.Set("Authorization", "Bearer "+h.token("EdDSA", "u1"))
	w := h.serve(r)
	if w.Code != http.StatusGatewayTimeout || !strings.Contains(w.Body.String(), `"GATEWAY_TIMEOUT"`) {
		t.Errorf("status %d %s", w.Code, w.Body)
	}
}
