package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSecurityHeaders checks the headers on answers the proxy makes itself
// and on forwarded ones, for every way a request can be https or not.
func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8"}})
	h.backend.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/own-hsts" {
			w.Header().Set(headerHSTS, "max-age=60")
		}
		_, _ = io.WriteString(w, "{}")
	})
	h.authsvc.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/auth/cached" {
			w.Header().Set(headerCacheControl, "private, max-age=5")
		}
		_, _ = io.WriteString(w, "{}")
	})
	tok := h.token("EdDSA", "u1")
	const (
		untrusted = "198.51.100.23:5555"
		trusted   = "10.1.2.3:5555"
	)
	type want struct {
		status      int
		generated   bool   // nosniff, no-referrer, no-store
		hsts        string // "" means absent
		cache       string // when not generated
		noReferrerP bool   // upstream answer without its own Referrer-Policy: the proxy adds no-referrer
	}
	for _, tt := range []struct {
		name   string
		url    string
		peer   string
		header map[string]string
		want   want
	}{
		{"401 over http", "/api/v1/todos", untrusted, nil, want{status: 401, generated: true}},
		{"healthz", "/healthz", untrusted, nil, want{status: 200, generated: true}},
		{"404", "/nowhere", untrusted, nil, want{status: 404, generated: true}},
		{"400 bad path", "/api/v1/a/../b", untrusted, nil, want{status: 400, generated: true}},
		{"401 https from trusted proxy", "/api/v1/todos", trusted, map[string]string{"X-Forwarded-Proto": "https"},
			want{status: 401, generated: true, hsts: hstsValue}},
		{"401 https claimed by untrusted client", "/api/v1/todos", untrusted, map[string]string{"X-Forwarded-Proto": "https"},
			want{status: 401, generated: true}},
		{"401 TLS on the listener", "https://proxy.example/api/v1/todos", untrusted, nil,
			want{status: 401, generated: true, hsts: hstsValue}},
		{"backend over http", "/api/v1/todos", untrusted, map[string]string{"Authorization": "Bearer " + tok},
			want{status: 200, noReferrerP: true}},
		{"backend https via trusted proxy", "/api/v1/todos", trusted,
			map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-Proto": "https"},
			want{status: 200, hsts: hstsValue, noReferrerP: true}},
		{"backend https claimed by untrusted client", "/api/v1/todos", untrusted,
			map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-Proto": "https"},
			want{status: 200, noReferrerP: true}},
		{"backend's own HSTS kept", "https://proxy.example/api/v1/own-hsts", untrusted,
			map[string]string{"Authorization": "Bearer " + tok}, want{status: 200, hsts: "max-age=60", noReferrerP: true}},
		{"authsvc gets no-store", "/api/auth/get-session", untrusted, nil, want{status: 200, cache: "no-store", noReferrerP: true}},
		{"authsvc's own Cache-Control kept", "/api/auth/cached", untrusted, nil, want{status: 200, cache: "private, max-age=5", noReferrerP: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.url, nil)
			r.RemoteAddr = tt.peer
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := h.serve(r)
			got := w.Result().Header
			if w.Code != tt.want.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want.status, w.Body)
			}
			if hsts := got.Values(headerHSTS); (tt.want.hsts == "" && len(hsts) != 0) || (tt.want.hsts != "" && (len(hsts) != 1 || hsts[0] != tt.want.hsts)) {
				t.Errorf("Strict-Transport-Security = %q, want %q", hsts, tt.want.hsts)
			}
			if tt.want.generated {
				for k, v := range map[string]string{headerContentTypeOptions: "nosniff", headerReferrerPolicy: "no-referrer", headerCacheControl: "no-store"} {
					if vs := got.Values(k); len(vs) != 1 || vs[0] != v {
						t.Errorf("%s = %q, want [%q]", k, vs, v)
					}
				}
				return
			}
			if vs := got.Values(headerCacheControl); (tt.want.cache == "" && len(vs) != 0) || (tt.want.cache != "" && (len(vs) != 1 || vs[0] != tt.want.cache)) {
				t.Errorf("Cache-Control = %q, want %q", vs, tt.want.cache)
			}
			// Forwarded answers get the baseline Referrer-Policy and nosniff
			// unless the upstream set its own.
			if tt.want.noReferrerP && got.Get(headerReferrerPolicy) != "no-referrer" {
				t.Errorf("Referrer-Policy = %q on a forwarded answer without one, want no-referrer", got.Get(headerReferrerPolicy))
			}
			if got.Get(headerContentTypeOptions) != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q on a forwarded answer, want nosniff", got.Get(headerContentTypeOptions))
			}
		})
	}
}

func TestSecurityHeadersOnUpstreamFailure(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	h.backend.Close() // unreachable: 502
	r := httptest.NewRequest("GET", "https://proxy.example/api/v1/todos", nil)
	r.Header.Set("Authorization", "Bearer "+h.token("HS256", "u1"))
	w := h.serve(r)
	if w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", w.Code)
	}
	for k, v := range map[string]string{headerContentTypeOptions: "nosniff", headerReferrerPolicy: "no-referrer",
		headerCacheControl: "no-store", headerHSTS: hstsValue} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
