package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/proxy/internal/headers"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

const accessCookie = "better-auth.access_token"

func TestForwardsValidTokenEveryAlgorithm(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, alg := range []string{"EdDSA", "ES256", "RS256", "PS256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			sub := "user-" + alg
			raw := h.token(alg, sub)
			r := httptest.NewRequest("GET", "/api/v1/todos?completed=true", nil)
			r.RemoteAddr = "198.51.100.23:5555"
			r.Header.Set("Authorization", "Bearer "+raw)
			r.Header.Set("Cookie", "theme=dark; "+accessCookie+"="+raw+"; better-auth.session_token=s")
			w := h.serve(r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := h.backend.last(t)
			if v := got.Header.Values(headers.UserID); len(v) != 1 || v[0] != sub {
				t.Errorf("X-User-Id = %q, want exactly [%q]", v, sub)
			}
			if v := got.Header.Values("Authorization"); len(v) != 0 {
				t.Errorf("Authorization forwarded: %d values", len(v))
			}
			if c := got.Header.Get("Cookie"); strings.Contains(c, "access_token") || c != "theme=dark; better-auth.session_token=s" {
				t.Errorf("Cookie = %q, want the other cookies only", c)
			}
			if got.RequestURI != "/api/v1/todos?completed=true" {
				t.Errorf("forwarded %q, want the same path and query", got.RequestURI)
			}
			if xff := got.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "198.51.100.23" {
				t.Errorf("X-Forwarded-For = %q", xff)
			}
			if rid := got.Header.Get("X-Request-Id"); rid == "" || rid != w.Header().Get("X-Request-Id") {
				t.Errorf("X-Request-Id upstream %q, response %q", rid, w.Header().Get("X-Request-Id"))
			}
		})
	}
}

func TestCookieOnlyTokenIsForwardedWithoutIt(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.Header.Set("Cookie", accessCookie+"="+h.token("EdDSA", "u-cookie"))
	if w := h.serve(r); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := h.backend.last(t)
	if got.Header.Get(headers.UserID) != "u-cookie" || got.Header.Get("Cookie") != "" {
		t.Errorf("X-User-Id %q, Cookie %q", got.Header.Get(headers.UserID), got.Header.Get("Cookie"))
	}
}

func TestRejectionsNeverReachBackend(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	var fetches atomic.Int64
	lure := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fetches.Add(1) }))
	defer lure.Close()
	ed := h.keys["EdDSA"]
	mod := func(f func(jwt.MapClaims)) jwt.MapClaims { c := tokentest.Claims("u1"); f(c); return c }
	now := time.Now()
	good := h.token("EdDSA", "u1")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, tokentest.Claims("u1")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	rsaConfused := tokentest.NewKeyWithSecret("HS256", []byte(h.jwks.URL())) // HS256 under a JWKS kid
	rsaConfused.KID = "kid-RS256"

	type row struct {
		name      string
		authz     []string // Authorization values
		cookie    string
		presented bool // a token was sent: error="invalid_token"
		code      string
	}
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	rows := []row{
		{"missing", nil, "", false, "UNAUTHENTICATED"},
		{"garbage", bearer("garbage"), "", true, "INVALID_TOKEN"},
		{"not bearer", []string{"Basic dXNlcjpwYXNz"}, "", true, "INVALID_TOKEN"},
		{"alg none", bearer(none + "c2ln"), "", true, "INVALID_TOKEN"},
		{"HS256 with a JWKS kid", bearer(rsaConfused.Sign(t, tokentest.Claims("u1"), nil)), "", true, "INVALID_TOKEN"},
		{"unknown kid", bearer(ed.Sign(t, tokentest.Claims("u1"), map[string]any{"kid": "nope"})), "", true, "INVALID_TOKEN"},
		{"embedded jwk", bearer(ed.Sign(t, tokentest.Claims("u1"), map[string]any{"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AA"}})), "", true, "INVALID_TOKEN"},
		{"jku", bearer(ed.Sign(t, tokentest.Claims("u1"), map[string]any{"jku": lure.URL})), "", true, "INVALID_TOKEN"},
		{"x5u", bearer(ed.Sign(t, tokentest.Claims("u1"), map[string]any{"x5u": lure.URL})), "", true, "INVALID_TOKEN"},
		{"expired", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), nil)), "", true, "TOKEN_EXPIRED"},
		{"not yet valid", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), nil)), "", true, "INVALID_TOKEN"},
		{"wrong iss", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), nil)), "", true, "INVALID_TOKEN"},
		{"wrong aud", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { c["aud"] = []string{"x"} }), nil)), "", true, "INVALID_TOKEN"},
		{"missing exp", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { delete(c, "exp") }), nil)), "", true, "INVALID_TOKEN"},
		{"bad sub", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { c["sub"] = "a,b" }), nil)), "", true, "INVALID_TOKEN"},
		{"oversized", bearer(ed.Sign(t, mod(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", 9000) }), nil)), "", true, "INVALID_TOKEN"},
		{"thousands of dots", bearer(strings.Repeat(".", 4000)), "", true, "INVALID_TOKEN"},
		{"header of dots", bearer(strings.Repeat(".", 3000) + good), "", true, "INVALID_TOKEN"},
		{"two Authorization headers", []string{"Bearer " + good, "Bearer " + good}, "", true, "AMBIGUOUS_TOKEN"},
		{"bearer differs from cookie", bearer(good), h.token("EdDSA", "someone-else"), true, "AMBIGUOUS_TOKEN"},
		{"bad cookie token", nil, "garbage", true, "INVALID_TOKEN"},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/todos", nil)
			for _, v := range tt.authz {
				r.Header.Add("Authorization", v)
			}
			if tt.cookie != "" {
				r.Header.Set("Cookie", accessCookie+"="+tt.cookie)
			}
			w := h.serve(r)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
			}
			var body struct{ Code, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Code != tt.code || body.Message == "" {
				t.Errorf("body %s, want code %s", w.Body, tt.code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			wa := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(wa, `Bearer realm="gatehouse"`) || strings.Contains(wa, `error="invalid_token"`) != tt.presented {
				t.Errorf("WWW-Authenticate %q (presented=%v)", wa, tt.presented)
			}
			for _, v := range tt.authz {
				if len(v) > 30 && strings.Contains(w.Body.String(), strings.TrimPrefix(v, "Bearer ")) {
					t.Error("body echoes the token")
				}
			}
		})
	}
	if n := h.backend.count(); n != 0 {
		t.Errorf("backend called %d times, want 0", n)
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("jku/x5u target fetched %d times, want 0", n)
	}
}

// hostile headers a client may send, by raw key (no canonicalisation).
var hostile = map[string][]string{
	"X-User-Id": {"victim"}, "x-user-id": {"victim"}, "X-USER-ID": {"victim", "victim2"}, "x-UsEr-iD": {"victim"},
	"X_User_Id": {"admin"}, "x_user_id": {"admin"}, "X-User-Email": {"a@b"}, "X-Auth-Request-User": {"admin"},
	"X-Forwarded-For": {"6.6.6.6"}, "x-forwarded-for": {"7.7.7.7"}, "X-Forwarded-Host": {"evil.example"},
	"X-Forwarded-Proto": {"https"}, "X-Forwarded-Uri": {"/admin"}, "X-Forwarded-Prefix": {"/x"},
	"Forwarded": {"for=6.6.6.6;proto=https"}, "X-Real-Ip": {"6.6.6.6"}, "X-Remote-User": {"admin"},
	"Remote-User": {"admin"}, "X-Original-Url": {"/api/v1/admin"}, "X-Request-Id": {"forged-id"},
	"Connection": {"X-User-Id, X-Forwarded-For, X-Request-Id, X-Forwarded-Proto"},
}

func TestHeaderSpoofingOnEveryRoute(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, tt := range []struct {
		name     string
		path     string
		up       *echo
		withTok  bool
		wantUser string
	}{
		{"protected", "/api/v1/todos", h.backend, true, "real-user"},
		{"public auth route", "/api/auth/get-session", h.authsvc, false, ""},
		{"public sign-in", "/api/auth/sign-in/email", h.authsvc, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			r.RemoteAddr = "203.0.113.50:40000"
			r.Host = "gate.example"
			for k, v := range hostile {
				r.Header[k] = v
			}
			if tt.withTok {
				r.Header.Set("Authorization", "Bearer "+h.token("ES256", "real-user"))
			}
			w := h.serve(r)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := tt.up.last(t).Header
			if v := got.Values(headers.UserID); (tt.wantUser == "" && len(v) != 0) || (tt.wantUser != "" && (len(v) != 1 || v[0] != tt.wantUser)) {
				t.Errorf("X-User-Id = %q, want %q", v, tt.wantUser)
			}
			want := map[string]string{
				"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Host": "gate.example", "X-Forwarded-Proto": "http",
			}
			for k, v := range want {
				if got.Values(k) == nil || len(got.Values(k)) != 1 || got.Get(k) != v {
					t.Errorf("%s = %q, want [%q]", k, got.Values(k), v)
				}
			}
			if rid := got.Get("X-Request-Id"); rid == "forged-id" || rid == "" {
				t.Errorf("X-Request-Id = %q, want the proxy's own", rid)
			}
			for k := range got {
				if !headers.Spoofable(k) {
					continue
				}
				switch http.CanonicalHeaderKey(k) {
				case "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", headers.UserID:
				default:
					t.Errorf("upstream received %s: %q", k, got[k])
				}
			}
		})
	}
}

// Over a real connection, Go canonicalises header keys; underscores survive
// as X_user_id. The upstream must still see only the proxy's identity.
func TestHeaderSpoofingOverTCP(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	raw := "GET /api/v1/todos HTTP/1.1\r\nHost: gate.example\r\n" +
		"Authorization: Bearer " + h.token("EdDSA", "real-user") + "\r\n" +
		"X-User-ID: victim\r\nx-user-id: victim2\r\nX_User_Id: admin\r\nConnection: X-User-ID, close\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Uri: /x\r\n\r\n"
	if code, body := rawRequest(t, h.addr(), raw); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	got := h.backend.last(t).Header
	if v := got.Values(headers.UserID); len(v) != 1 || v[0] != "real-user" {
		t.Errorf("X-User-Id = %q", v)
	}
	for k := range got {
		if strings.Contains(strings.ToLower(k), "user_id") || k == "X-Forwarded-Uri" {
			t.Errorf("upstream received %s", k)
		}
	}
	if got.Get("X-Forwarded-For") != "127.0.0.1" || got.Get("X-Forwarded-Proto") != "http" || got.Get("X-Forwarded-Host") != "gate.example" {
		t.Errorf("forwarding headers %v", got)
	}
}

func TestAuthsvcKeepsCookiesAndAuthorization(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	r := httptest.NewRequest("GET", "/api/auth/get-session", nil)
	r.Header.Set("Cookie", "better-auth.session_token=s; "+accessCookie+"=t")
	r.Header.Set("Authorization", "Bearer session-token")
	if w := h.serve(r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := h.authsvc.last(t)
	if got.Header.Get("Cookie") != "better-auth.session_token=s; "+accessCookie+"=t" || got.Header.Get("Authorization") != "Bearer session-token" {
		t.Errorf("authsvc got Cookie %q Authorization %q", got.Header.Get("Cookie"), got.Header.Get("Authorization"))
	}
	if got.Path != "/api/auth/get-session" {
		t.Errorf("path %q", got.Path)
	}
}

// A client that promises more body than it sends and then half-closes has
// broken its own request: 400 INVALID_BODY, not a 502 blamed on a healthy
// upstream (found by e2e TestReliabilityBadInput).
func TestTruncatedBodyIsTheClientsFault(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	tok := h.token("EdDSA", "u1")
	for _, target := range []string{"/api/v1/todos", "/api/auth/sign-in/email"} {
		c, err := net.Dial("tcp", h.addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		raw := "POST " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"title\":\"only part"
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: read response: %v", target, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "INVALID_BODY") {
			t.Errorf("%s with a truncated body = %d %s, want 400 INVALID_BODY", target, resp.StatusCode, body)
		}
	}
}

// Many users at once through the proxy over real connections, reads and
// writes, short and long, fixed-length and chunked answers: every answer
// names the user who asked, so no kept upstream connection ever hands one
// user's answer to another.
func TestConcurrentUsersGetTheirOwnAnswers(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user := r.Header.Get(headers.UserID)
		text := strings.Repeat(user+" "+string(body)+";", 1+len(r.URL.RawQuery)%7*300)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(text)))
		}
		io.WriteString(w, text)
	})
	h.backend.handle.Store(&answer)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for u := 0; u < 16; u++ {
		user := fmt.Sprintf("user-%02d", u)
		tok := h.token("HS256", user)
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			defer client.CloseIdleConnections()
			for i := 0; i < 60; i++ {
				q := fmt.Sprintf("i=%d", i)
				if i%4 == 0 {
					q += "&chunked=1"
				}
				var req *http.Request
				sent := ""
				if i%3 == 0 {
					sent = fmt.Sprintf(`{"n":%d}`, i)
					req, _ = http.NewRequest("POST", h.srv.URL+"/api/v1/todos?"+q, strings.NewReader(sent))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest("GET", h.srv.URL+"/api/v1/todos?"+q, nil)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("%s request %d: %d %v", user, i, resp.StatusCode, err)
					return
				}
				for _, part := range strings.Split(strings.TrimSuffix(string(b), ";"), ";") {
					if part != user+" "+sent {
						errs <- fmt.Errorf("%s request %d got %.60q", user, i, part)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
