package main

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse.dev/kit/wire"
)

const corsRoutes = `cors:
  origins: [https://app.example.com, http://localhost:3000]
  credentials: true
  max_age: 5m
`

func preflightHeaders(origin, method string) http.Header {
	return http.Header{
		"Origin": {origin}, "Access-Control-Request-Method": {method},
		"Access-Control-Request-Headers": {"authorization, content-type"},
	}
}

// TestCORSPreflight: the proxy answers preflights itself, without a token,
// granting listed origins only; nothing reaches the upstream.
func TestCORSPreflight(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML(corsRoutes)})
	for _, tt := range []struct {
		name, origin, method string
		want                 int
	}{
		{"listed origin", "https://app.example.com", "POST", 204},
		{"listed origin, default port spelled out", "https://app.example.com:443", "DELETE", 204},
		{"second listed origin", "http://localhost:3000", "GET", 204},
		{"unlisted origin", "https://evil.example", "POST", 403},
		{"look-alike origin", "https://app.example.com.evil.example", "POST", 403},
		{"other scheme", "http://app.example.com", "POST", 403},
		{"null origin", "null", "POST", 403},
		{"method not grantable", "https://app.example.com", "CONNECT", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := h.backend.count() + h.authsvc.count()
			resp, body := h.do(t, "OPTIONS", "/api/v1/todos", preflightHeaders(tt.origin, tt.method))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if h.backend.count()+h.authsvc.count() != n {
				t.Error("a preflight reached an upstream")
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary = %q, want Origin", resp.Header.Values("Vary"))
			}
			acao, acac := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials")
			if tt.want != 204 {
				if acao != "" || acac != "" {
					t.Errorf("refused preflight granted %q (credentials %q)", acao, acac)
				}
				if !strings.Contains(body, "CORS_ORIGIN_NOT_ALLOWED") {
					t.Errorf("body %s, want CORS_ORIGIN_NOT_ALLOWED", body)
				}
				return
			}
			want, _ := wire.ParseOrigin(tt.origin)
			if acao != want || acac != "true" {
				t.Errorf("Allow-Origin %q, Allow-Credentials %q; want %q, true", acao, acac, want)
			}
			if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, tt.method) {
				t.Errorf("Allow-Methods %q lacks %s", m, tt.method)
			}
			if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "authorization, content-type" {
				t.Errorf("Allow-Headers %q", got)
			}
			if got := resp.Header.Get("Access-Control-Max-Age"); got != "300" {
				t.Errorf("Max-Age %q, want 300", got)
			}
		})
	}
	// Requested headers that are not header names are not echoed.
	hdr := preflightHeaders("https://app.example.com", "GET")
	hdr.Set("Access-Control-Request-Headers", "x-ok, <script>")
	if resp, _ := h.do(t, "OPTIONS", "/api/v1/todos", hdr); resp.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("echoed a malformed header list: %q", resp.Header.Get("Access-Control-Allow-Headers"))
	}
}

// TestCORSActualRequests: answers carry Allow-Origin (and credentials) only
// for listed origins, with Vary: Origin on every answer; an upstream's own
// allowance is replaced; the cookie CSRF rule is unchanged.
func TestCORSActualRequests(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML(corsRoutes)})
	h.backend.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // an upstream being generous
		w.WriteHeader(200)
	})
	tok := h.token("EdDSA", "u-cors")
	for _, tt := range []struct {
		name, origin string
		grant        bool
	}{
		{"listed", "https://app.example.com", true},
		{"unlisted", "https://evil.example", false},
		{"no origin", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := bearer(tok)
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			resp, body := h.do(t, "GET", "/api/v1/todos", hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			acao := resp.Header.Values("Access-Control-Allow-Origin")
			acac := resp.Header.Get("Access-Control-Allow-Credentials")
			if tt.grant && (len(acao) != 1 || acao[0] != tt.origin || acac != "true") {
				t.Errorf("Allow-Origin %q, credentials %q; want [%s], true", acao, acac, tt.origin)
			}
			if !tt.grant && (len(acao) != 0 || acac != "") {
				t.Errorf("unlisted origin granted %q (credentials %q)", acao, acac)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Error("no Vary: Origin")
			}
		})
	}
	// A 401 the proxy makes itself is readable by the listed origin too.
	resp, _ := h.do(t, "GET", "/api/v1/todos", http.Header{"Origin": {"https://app.example.com"}})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("401: status %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// Listing an origin for CORS does not let it send cookie-authenticated
	// unsafe requests: that is still ALLOWED_ORIGINS' job.
	hdr := http.Header{"Cookie": {"better-auth.access_token=" + tok}, "Origin": {"https://app.example.com"}}
	if resp, body := h.do(t, "POST", "/api/v1/todos", hdr); resp.StatusCode != 403 || !strings.Contains(body, "INVALID_ORIGIN") {
		t.Errorf("cookie POST from a CORS origin not in ALLOWED_ORIGINS: %d %s, want 403 INVALID_ORIGIN", resp.StatusCode, body)
	}
}

// TestCORSPreflightOnVerifyListener: forward auth lets a listed origin's
// preflight through (200, so the ingress passes it on) and refuses others.
func TestCORSPreflightOnVerifyListener(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML(corsRoutes)})
	v := verifyServer(t, h)
	for origin, want := range map[string]int{"https://app.example.com": 200, "https://evil.example": 403} {
		req, _ := http.NewRequest("OPTIONS", v.URL+"/verify", nil)
		req.Header = preflightHeaders(origin, "POST")
		req.Header.Set("X-Original-Uri", "/api/v1/todos")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("preflight from %s: %d, want %d", origin, resp.StatusCode, want)
		}
	}
}
