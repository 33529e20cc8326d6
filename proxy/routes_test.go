package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse.dev/proxy/internal/token/tokentest"
)

// routesYAML is a routes file over the harness's upstreams: app is the
// backend echo, auth the authsvc echo. extra is appended (identity, cors).
func routesYAML(extra string) func(h *harness) string {
	return func(h *harness) string {
		return fmt.Sprintf(`
upstreams:
  app: %s
  auth: %s
routes:
  - prefix: /api/auth/
    upstream: auth
    auth: none
    rate_limit: auth
  - prefix: /api/
    upstream: app
  - prefix: /events/
    upstream: app
    timeout: 1h
  - prefix: /public/
    upstream: app
    auth: none
  - prefix: /
    upstream: app
    auth: optional
%s`, h.backend.URL, h.authsvc.URL, extra)
	}
}

// do sends one request through the harness's real listener.
func (h *harness) do(t *testing.T, method, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestRoutesFileRouting(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML("")})
	tok := h.token("EdDSA", "u-route")
	for _, tt := range []struct {
		name, path string
		hdr        http.Header
		want       int
		upstream   *echo // nil: nothing forwarded
		user       string
	}{
		{"auth route, no token", "/api/auth/get-session", nil, 200, h.authsvc, ""},
		{"api needs a token", "/api/v1/todos", nil, 401, nil, ""},
		{"api with a token", "/api/v1/todos", bearer(tok), 200, h.backend, "u-route"},
		{"longest prefix: /api/auth/ over /api/", "/api/auth/x", bearer(tok), 200, h.authsvc, ""},
		{"prefix is a plain string prefix: /api without slash falls to /", "/api", nil, 200, h.backend, ""},
		{"optional root, no token", "/index.html", nil, 200, h.backend, ""},
		{"optional root, token", "/index.html", bearer(tok), 200, h.backend, "u-route"},
		{"path checks still first", "/api/auth/../v1/todos", nil, 400, nil, ""},
		{"healthz answered by the proxy", "/healthz", nil, 200, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nb, na := h.backend.count(), h.authsvc.count()
			var resp *http.Response
			var body string
			if strings.Contains(tt.path, "..") {
				code, b := rawRequest(t, h.addr(), "GET "+tt.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				resp, body = &http.Response{StatusCode: code}, b
			} else {
				resp, body = h.do(t, "GET", tt.path, tt.hdr)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			gotB, gotA := h.backend.count()-nb, h.authsvc.count()-na
			switch tt.upstream {
			case nil:
				if gotB+gotA != 0 {
					t.Errorf("forwarded (backend %d, authsvc %d), want nothing", gotB, gotA)
				}
			case h.backend:
				if gotB != 1 || gotA != 0 {
					t.Errorf("backend got %d, authsvc %d; want the backend", gotB, gotA)
				}
				if u := h.backend.last(t).Header.Get("X-User-Id"); u != tt.user {
					t.Errorf("X-User-ID = %q, want %q", u, tt.user)
				}
			case h.authsvc:
				if gotA != 1 || gotB != 0 {
					t.Errorf("authsvc got %d, backend %d; want authsvc", gotA, gotB)
				}
				if u := h.authsvc.last(t).Header.Get("X-User-Id"); u != "" {
					t.Errorf("auth: none route got X-User-ID %q", u)
				}
			}
		})
	}
	if got := testutil.ToFloat64(h.m.routesReloadOK); got != 1 {
		t.Errorf("proxy_routes_last_reload_success = %v, want 1", got)
	}
}

// TestRoutesFileWithoutMatch: a table without "/" answers 404 itself.
func TestRoutesFileWithoutMatch(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: func(h *harness) string {
		return "upstreams:\n  app: " + h.backend.URL + "\nroutes:\n  - prefix: /only/\n    upstream: app\n    auth: none\n"
	}})
	if resp, body := h.do(t, "GET", "/api/v1/todos", nil); resp.StatusCode != 404 || !strings.Contains(body, "NOT_FOUND") {
		t.Errorf("unrouted path: %d %s, want 404 NOT_FOUND", resp.StatusCode, body)
	}
	if h.backend.count() != 0 {
		t.Error("an unrouted request reached the upstream")
	}
}

// identityRoutes maps four claims of different JSON types to headers.
const identityRoutes = `identity:
  email: X-User-Email
  roles: X-User-Roles
  level: X-Level
  admin: X-Admin
`

// TestIdentityHeadersFromClaims: claims arrive as headers on token routes,
// and every inbound copy of a mapped header (any spelling, every route,
// with or without a token) is removed first.
func TestIdentityHeadersFromClaims(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML(identityRoutes)})
	c := tokentest.Claims("u-ident")
	c["email"] = "ada@example.com"
	c["roles"] = []any{"admin", "editor"}
	c["level"] = 42.5
	c["admin"] = true
	tok := h.keys["EdDSA"].Sign(t, c, nil)
	spoofed := func() http.Header {
		return http.Header{
			"X-User-Email": {"evil@example.com"}, "x_user_email": {"evil2@example.com"},
			"X-User-Roles": {"root"}, "X-Level": {"9000"}, "x-level": {"9001"}, "X_Level": {"9002"},
			"X-Admin": {"true"}, "X-ADMIN": {"true"}, "X-User-Id": {"root"},
		}
	}
	want := map[string]string{"X-User-Id": "u-ident", "X-User-Email": "ada@example.com", "X-User-Roles": "admin,editor", "X-Level": "42.5", "X-Admin": "true"}
	for _, tt := range []struct {
		name, path string
		token      bool
		upstream   *echo
		identity   bool
	}{
		{"required route", "/api/v1/x", true, h.backend, true},
		{"optional route with token", "/page", true, h.backend, true},
		{"optional route without token", "/page", false, h.backend, false},
		{"none route with token", "/public/x", true, h.backend, false},
		{"none route to auth", "/api/auth/get-session", true, h.authsvc, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := spoofed()
			if tt.token {
				hdr.Set("Authorization", "Bearer "+tok)
			}
			if resp, body := h.do(t, "GET", tt.path, hdr); resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := tt.upstream.last(t).Header
			for k, v := range want {
				vals := headerValuesAnyCase(got, k)
				switch {
				case tt.identity && (len(vals) != 1 || vals[0] != v):
					t.Errorf("%s = %q, want exactly [%q]", k, vals, v)
				case !tt.identity && len(vals) != 0:
					t.Errorf("%s = %q reached the upstream, want none", k, vals)
				}
			}
		})
	}
}

// headerValuesAnyCase collects the values of every key equal to name when
// case and '_' versus '-' are ignored.
func headerValuesAnyCase(h http.Header, name string) []string {
	var out []string
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }
	for k, vs := range h {
		if norm(k) == norm(name) {
			out = append(out, vs...)
		}
	}
	return out
}

// TestIdentityBadClaimValues: a claim that cannot be a header refuses the
// token (401), and nothing reaches the upstream.
func TestIdentityBadClaimValues(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML(identityRoutes)})
	for _, tt := range []struct {
		name  string
		claim string
		value any
	}{
		{"CRLF in a string", "email", "a@example.com\r\nX-User-Id: root"},
		{"NUL in a string", "email", "a\x00b"},
		{"tab in a string", "email", "a\tb"},
		{"C1 control", "email", "a\u0085b"},
		{"over 1 KiB", "email", strings.Repeat("a", 1025)},
		{"array over 1 KiB", "roles", []any{strings.Repeat("a", 600), strings.Repeat("b", 600)}},
		{"object", "email", map[string]any{"a": "b"}},
		{"mixed array", "roles", []any{"admin", 1}},
		{"array of objects", "roles", []any{map[string]any{}}},
		{"comma inside an array element", "roles", []any{"a,b"}},
		{"control in an array element", "roles", []any{"a\nb"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tokentest.Claims("u-bad")
			c[tt.claim] = tt.value
			tok := h.keys["HS256"].Sign(t, c, nil)
			n := h.backend.count()
			for _, path := range []string{"/api/v1/x", "/page"} {
				resp, body := h.do(t, "GET", path, bearer(tok))
				if resp.StatusCode != 401 || !strings.Contains(body, "INVALID_TOKEN") {
					t.Errorf("%s: status %d %s, want 401 INVALID_TOKEN", path, resp.StatusCode, body)
				}
			}
			if h.backend.count() != n {
				t.Error("a token with a bad claim reached the upstream")
			}
		})
	}
	if got := testutil.ToFloat64(h.m.authFailures.WithLabelValues("bad_claim")); got < 1 {
		t.Errorf("auth_failures_total{reason=bad_claim} = %v", got)
	}
	// Control rows: absent and null claims send no header, and pass.
	c := tokentest.Claims("u-ok")
	c["email"] = nil
	if resp, body := h.do(t, "GET", "/api/v1/x", bearer(h.keys["HS256"].Sign(t, c, nil))); resp.StatusCode != 200 {
		t.Fatalf("null claim: %d %s", resp.StatusCode, body)
	}
	if v := h.backend.last(t).Header.Values("X-User-Email"); len(v) != 0 {
		t.Errorf("null claim sent X-User-Email %q", v)
	}
}

// TestOptionalRoute: no token → forwarded without identity; good token →
// identity; bad or expired token → 401 and nothing forwarded.
func TestOptionalRoute(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML("")})
	expired := tokentest.Claims("u-opt")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	for _, tt := range []struct {
		name string
		hdr  http.Header
		want int
		user string
	}{
		{"no token", nil, 200, ""},
		{"good token", bearer(h.token("ES256", "u-opt")), 200, "u-opt"},
		{"good cookie", http.Header{"Cookie": {"better-auth.access_token=" + h.token("EdDSA", "u-opt")}}, 200, "u-opt"},
		{"bad signature", bearer(h.token("EdDSA", "u-opt") + "x"), 401, ""},
		{"garbage", bearer("a.b.c"), 401, ""},
		{"expired", bearer(h.keys["EdDSA"].Sign(t, expired, nil)), 401, ""},
		{"two tokens", http.Header{"Authorization": {"Bearer " + h.token("EdDSA", "a"), "Bearer " + h.token("EdDSA", "b")}}, 401, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := h.backend.count()
			resp, body := h.do(t, "GET", "/page", tt.hdr)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want != 200 {
				if h.backend.count() != n {
					t.Error("a refused request reached the upstream")
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			got := h.backend.last(t).Header
			if u := got.Get("X-User-Id"); u != tt.user {
				t.Errorf("X-User-ID = %q, want %q", u, tt.user)
			}
			if got.Get("Authorization") != "" || strings.Contains(got.Get("Cookie"), "access_token") {
				t.Error("the token reached an optional route's upstream")
			}
		})
	}
	// The cookie CSRF rule stays on optional routes.
	hdr := http.Header{"Cookie": {"better-auth.access_token=" + h.token("EdDSA", "u-opt")}, "Origin": {"https://evil.example"}}
	if resp, body := h.do(t, "POST", "/page", hdr); resp.StatusCode != 403 || !strings.Contains(body, "INVALID_ORIGIN") {
		t.Errorf("cookie POST from a foreign origin: %d %s, want 403 INVALID_ORIGIN", resp.StatusCode, body)
	}
}

// TestRoutesReloadUnderLoad: requests keep flowing, with none failing,
// while the file is replaced by a good one (new routes take effect) and
// then by a broken one (kept out, metric 0, old routes stay).
func TestRoutesReloadUnderLoad(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML("")})
	tok := h.token("EdDSA", "u-load")
	var stop atomic.Bool
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := h.srv.Client()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", h.srv.URL+"/api/v1/todos", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
				}
			}
		}()
	}
	waitSent := func(n int64) {
		for target := sent.Load() + n; sent.Load() < target; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitSent(50)
	// Good file: adds /new/ (auth none) and keeps /api/.
	good := routesYAML("")(h) + ""
	good = strings.Replace(good, "routes:\n", "routes:\n  - prefix: /new/\n    upstream: app\n    auth: none\n", 1)
	h.writeRoutes(good)
	if err := h.s.reloadRoutes(false); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if resp, _ := h.do(t, "GET", "/new/x", nil); resp.StatusCode != 200 {
		t.Errorf("/new/ after reload: %d, want 200", resp.StatusCode)
	}
	waitSent(50)
	// Broken file: refused, old table stays, metric says so.
	h.writeRoutes("upstreams:\n  app: nope\nroutes:\n  - prefix: /\n    upstream: gone\n")
	if err := h.s.reloadRoutes(false); err == nil {
		t.Fatal("broken file accepted")
	}
	if got := testutil.ToFloat64(h.m.routesReloadOK); got != 0 {
		t.Errorf("proxy_routes_last_reload_success = %v after a broken file, want 0", got)
	}
	waitSent(50)
	if resp, _ := h.do(t, "GET", "/new/x", nil); resp.StatusCode != 200 {
		t.Errorf("/new/ after a broken reload: %d, want 200 (the good routes stay)", resp.StatusCode)
	}
	stop.Store(true)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", f, sent.Load(), firstErr.Load())
	}
	t.Logf("%d requests during two reloads, none failed", sent.Load())
}
