package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse.dev/kit/wire/wiretest"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

func TestCSRFRuleForCookieAuth(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{
		"ALLOWED_ORIGINS": "https://app.example.com", "TRUSTED_PROXIES": "10.0.0.1",
	}})
	tok := h.token("EdDSA", "u1")
	for _, tt := range []struct {
		name    string
		method  string
		cookie  bool
		bearer  bool
		origin  []string
		remote  string
		fwd     map[string]string
		want    int
		wantErr string
	}{
		{"cookie POST same origin", "POST", true, false, []string{"http://gate.example"}, "", nil, 200, ""},
		{"cookie POST same origin default port", "POST", true, false, []string{"http://gate.example:80"}, "", nil, 200, ""},
		{"cookie POST allowed origin", "POST", true, false, []string{"https://app.example.com"}, "", nil, 200, ""},
		{"cookie POST no origin", "POST", true, false, nil, "", nil, 403, "INVALID_ORIGIN"},
		{"cookie POST null origin", "POST", true, false, []string{"null"}, "", nil, 403, "INVALID_ORIGIN"},
		{"cookie DELETE foreign origin", "DELETE", true, false, []string{"https://evil.example"}, "", nil, 403, "INVALID_ORIGIN"},
		{"cookie PATCH scheme mismatch", "PATCH", true, false, []string{"https://gate.example"}, "", nil, 403, "INVALID_ORIGIN"},
		{"cookie PUT two origins", "PUT", true, false, []string{"http://gate.example", "https://evil.example"}, "", nil, 403, "INVALID_ORIGIN"},
		{"cookie GET needs no origin", "GET", true, false, nil, "", nil, 200, ""},
		{"bearer POST needs no origin", "POST", false, true, nil, "", nil, 200, ""},
		{"forwarded proto from untrusted peer ignored", "POST", true, false, []string{"https://gate.example"}, "203.0.113.1:1",
			map[string]string{"X-Forwarded-Proto": "https"}, 403, "INVALID_ORIGIN"},
		{"forwarded proto from trusted proxy", "POST", true, false, []string{"https://public.example"}, "10.0.0.1:1",
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/v1/todos", strings.NewReader(`{}`))
			r.Host = "gate.example"
			if tt.remote != "" {
				r.RemoteAddr = tt.remote
			}
			if tt.cookie {
				r.Header.Set("Cookie", accessCookie+"="+tok)
			}
			if tt.bearer {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			for _, o := range tt.origin {
				r.Header.Add("Origin", o)
			}
			for k, v := range tt.fwd {
				r.Header.Set(k, v)
			}
			w := h.serve(r)
			if w.Code != tt.want || (tt.wantErr != "" && !strings.Contains(w.Body.String(), tt.wantErr)) {
				t.Errorf("status %d body %s, want %d %s", w.Code, w.Body, tt.want, tt.wantErr)
			}
		})
	}
}

// ALLOWED_ORIGINS is read by the same rule as authsvc's TRUSTED_ORIGINS: the
// shared cases of kit/wire/wiretest, run here and in authsvc.
func TestAllowedOriginsReadLikeAuthsvc(t *testing.T) {
	for _, tc := range wiretest.OriginCases {
		h := newHarness(t, harnessOpt{env: map[string]string{"ALLOWED_ORIGINS": tc.Configured}})
		r := httptest.NewRequest("POST", "/api/v1/todos", strings.NewReader(`{}`))
		r.Host = "gate.example"
		r.Header.Set("Cookie", accessCookie+"="+h.token("EdDSA", "u1"))
		r.Header.Set("Origin", tc.Sent)
		if w := h.serve(r); (w.Code == http.StatusOK) != tc.Match {
			t.Errorf("ALLOWED_ORIGINS=%q, Origin %q: status %d %s, want match %v", tc.Configured, tc.Sent, w.Code, w.Body, tc.Match)
		}
	}
}

func TestSecureCookieName(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.Header.Set("Cookie", "__Secure-better-auth.access_token="+h.token("PS256", "u-secure"))
	if w := h.serve(r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if got := h.backend.last(t).Header; got.Get("X-User-Id") != "u-secure" || got.Get("Cookie") != "" {
		t.Errorf("backend headers %v", got)
	}
}

func TestAuthFailureMetricByReason(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	c := tokentest.Claims("u1")
	c["exp"] = time.Now().Add(-time.Hour).Unix()
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.Header.Set("Authorization", "Bearer "+h.keys["EdDSA"].Sign(t, c, nil))
	h.serve(r)
	h.serve(httptest.NewRequest("GET", "/api/v1/todos", nil))
	if got := testutil.ToFloat64(h.m.authFailures.WithLabelValues("expired")); got != 1 {
		t.Errorf("expired = %v", got)
	}
	if got := testutil.ToFloat64(h.m.authFailures.WithLabelValues("missing")); got != 1 {
		t.Errorf("missing = %v", got)
	}
}

// Before the JWKS has ever loaded, a JWKS token gets 503 (retry), not 401
// (which would make a client discard a good token); HS256 still works; and
// the proxy is not ready.
func TestJWKSNotYetLoaded(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"JWT_SECRET": ""}})
	h.jwks.SetDown(true)
	// A fresh harness over the downed JWKS: rebuild with the same env.
	h2 := newHarnessWithJWKS(t, h)
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.Header.Set("Authorization", "Bearer "+h.token("EdDSA", "u1"))
	w := h2.serve(r)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "KEYS_UNAVAILABLE") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	if w := h2.serve(httptest.NewRequest("GET", "/readyz", nil)); w.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz %d, want 503 before keys load", w.Code)
	}
	h.jwks.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for !h2.verifier.JWKSLoaded() {
		if time.Now().After(deadline) {
			t.Fatal("JWKS never loaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if w := h2.serve(r.Clone(r.Context())); w.Code != 200 {
		t.Errorf("after load: %d %s", w.Code, w.Body)
	}
	if w := h2.serve(httptest.NewRequest("GET", "/readyz", nil)); w.Code != 200 {
		t.Errorf("readyz %d after load", w.Code)
	}
}

// Upstreams echo the request ID the proxy gave them; the answer carries it
// once (issue 12: proxied auth answers had X-Request-Id twice).
func TestProxiedAnswerHasOneRequestID(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	echoID := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}
	h.authsvc.setHandler(echoID)
	h.backend.setHandler(echoID)
	for _, tc := range []struct{ path, bearer string }{
		{"/api/auth/ok", ""},
		{"/api/v1/todos", h.token("EdDSA", "u1")},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.bearer != "" {
			r.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		w := h.serve(r)
		if ids := w.Header().Values("X-Request-Id"); w.Code != 200 || len(ids) != 1 || ids[0] == "" {
			t.Errorf("GET %s: status %d, X-Request-Id %q, want one non-empty value", tc.path, w.Code, ids)
		}
	}
}
