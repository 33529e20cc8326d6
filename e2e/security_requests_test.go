package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Hostile requests against one running stack: identity spoofing, path
// confusion, CSRF, token smuggling and oversized input. Every case also
// asserts what the backend received, through the recording relay.
func TestAttackRequests(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{RecordBackend: true})
	addr := hostOf(s.URL)
	a, b := s.NewUser(t), s.NewUser(t)
	a.SignUp("spoof-a@example.com", pw)
	b.SignUp("spoof-b@example.com", pw)
	aID, bID := a.userID(), b.userID()
	ta, tb := a.Token(), b.Token()
	td := a.CreateTodo("a's")
	t.Run("spoofing", func(t *testing.T) { testSpoofing(t, s, addr, ta, aID, bID, td.ID) })
	t.Run("paths", func(t *testing.T) { testPathConfusion(t, s, addr) })
	t.Run("csrf", func(t *testing.T) { testCSRF(t, s, a, addr, td.ID) })
	t.Run("smuggling", func(t *testing.T) { testSmuggling(t, s, addr, ta, tb) })
	t.Run("oversized", func(t *testing.T) { testOversized(t, s, addr, ta) })
}

// identityHeader reports whether a header name is one the backend must only
// ever get from the proxy (or not at all).
func identityHeader(k string) bool {
	k = strings.ToLower(strings.ReplaceAll(k, "_", "-"))
	for _, p := range []string{"x-user-", "x-auth-", "x-forwarded-user", "x-forwarded-email", "x-remote-user", "remote-user", "x-real-ip", "forwarded"} {
		if strings.HasPrefix(k, p) && k != "x-user-id" {
			return true
		}
	}
	return false
}

func testSpoofing(t *testing.T, s *Stack, addr, ta, aID, bID string, todoID int64) {
	rows := [][]string{
		{"X-User-ID: " + bID}, {"x-user-id: " + bID}, {"X-USER-ID: " + bID}, {"X_User_Id: " + bID},
		{"x_user_id: " + bID}, {"X-User-Id:" + bID}, {"X-User-Id:\t" + bID},
		{"X-User-Id: " + bID, "X-User-Id: " + bID}, {"X-User-Id: " + aID + ", " + bID}, {"X-User-Id: " + bID, "x-user-id: " + aID},
		{"X-User: " + bID}, {"X-User-Email: b@example.com"}, {"X-Auth-User: " + bID}, {"X-Auth-Request-User: " + bID},
		{"X-Auth-Request-Email: b@example.com"}, {"X-Forwarded-User: " + bID}, {"X-Forwarded-Email: b@example.com"},
		{"X-Remote-User: " + bID}, {"Remote-User: " + bID}, {"X-Real-IP: 10.0.0.1"}, {"Forwarded: for=10.0.0.1;host=evil"},
		{"X-Forwarded-For: 10.0.0.1"}, {"X-Forwarded-Host: evil.example"}, {"X-Forwarded-Proto: https"},
		{"X-Original-URL: /api/v1/admin"}, {"X-Rewrite-URL: /api/v1/admin"},
		{"Connection: X-User-ID", "X-User-ID: " + bID},
		{"Connection: close, X-User-Id, X-Forwarded-For, X-Request-Id", "X-User-Id: " + bID},
		{"Connection: X-Forwarded-For"}, {"Connection: X-Request-Id"}, {"Connection: Authorization"},
		{"Connection: keep-alive, X-User-Id", "Keep-Alive: timeout=5"},
		{"X-Folded: a", " X-User-Id: " + bID}, // obs-fold: a continuation, never a header
		{"X-User-Id : " + bID},                // space before the colon
	}
	routes := []string{"/api/v1/todos", fmt.Sprintf("/api/v1/todos/%d", todoID), "/api/v1/todos/", "/api/v1/nothing", "/api/other"}
	for i, row := range rows {
		for _, route := range routes {
			name := fmt.Sprintf("%d %s %s", i, route, strings.Join(row, " | "))
			// With a's token: the backend gets a, once, and nothing else.
			m := marker(name)
			r := rawGet(t, addr, "GET", route+"?"+m, append([]string{"Authorization: Bearer " + ta}, row...)...)
			seen := s.Seen.Find("", m)
			if r.Status == http.StatusBadRequest && len(seen) == 0 {
				continue // refused outright (e.g. space before the colon): fine
			}
			if len(seen) != 1 {
				t.Errorf("%s: backend saw %d requests (answer %s)", name, len(seen), r)
				continue
			}
			h := seen[0].Header
			if got := h.Values("X-User-Id"); len(got) != 1 || got[0] != aID {
				t.Errorf("%s: backend X-User-Id = %q, want [%s]", name, got, aID)
			}
			if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("%s: backend X-Forwarded-For = %q, want [127.0.0.1]", name, got)
			}
			if got := h.Get("X-Forwarded-Host"); got != addr {
				t.Errorf("%s: backend X-Forwarded-Host = %q, want %q", name, got, addr)
			}
			if got := h.Get("X-Request-Id"); got == "" || got != r.Header.Get("X-Request-Id") {
				t.Errorf("%s: backend X-Request-Id = %q, client got %q", name, got, r.Header.Get("X-Request-Id"))
			}
			for k := range h {
				if identityHeader(k) || strings.EqualFold(k, "Authorization") {
					t.Errorf("%s: backend received %s: %q", name, k, h[k])
				}
			}
			// Without a token: 401 and nothing at the backend.
			m = marker(name + " anon")
			r = rawGet(t, addr, "GET", route+"?"+m, row...)
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest {
				t.Errorf("%s without a token: %s, want 401", name, r)
			}
			s.Seen.AssertUnseen(t, name+" without a token", r, m)
		}
	}
	// Two requests pipelined on one connection: the second, without a token
	// but with X-User-Id, must not ride on the first's authentication.
	m1, m2 := marker("pipelined first"), marker("pipelined second")
	rawDo(t, addr, "GET /api/v1/todos?"+m1+" HTTP/1.1\r\nHost: "+addr+"\r\nAuthorization: Bearer "+ta+"\r\n\r\n"+
		"GET /api/v1/todos?"+m2+" HTTP/1.1\r\nHost: "+addr+"\r\nX-User-Id: "+bID+"\r\nConnection: close\r\n\r\n")
	if len(s.Seen.Find("", m2)) > 0 {
		t.Errorf("pipelined request without a token reached the backend")
	}
	// Request smuggling: a second request hidden in the body by CL/TE
	// disagreement must not reach the backend as a request.
	for _, framing := range []string{
		"Content-Length: %d\r\nTransfer-Encoding: chunked",
		"Transfer-Encoding: chunked\r\nContent-Length: %d",
		"Transfer-Encoding: xchunked\r\nContent-Length: %d",
		"Transfer-Encoding: chunked, identity\r\nContent-Length: %d",
		"Content-Length: %d\r\nContent-Length: 0",
	} {
		m := marker("smuggled")
		inner := "GET /api/v1/todos?" + m + " HTTP/1.1\r\nHost: " + addr + "\r\nX-User-Id: " + bID + "\r\n\r\n"
		body := "0\r\n\r\n" + inner
		head := "POST /api/v1/todos?" + marker("carrier") + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + ta +
			"\r\nContent-Type: application/json\r\n" + fmt.Sprintf(framing, len(body)) + "\r\n\r\n"
		rawDo(t, addr, head+body)
		for _, q := range s.Seen.Find("", m) {
			t.Errorf("smuggled request reached the backend (%q): %s %s %v", framing, q.Method, q.URI, q.RawHeader)
		}
	}
}

// Raw request targets that try to reach /api/v1 (token required) by way of a
// route that needs none. Sent over a bare connection: Go's client would clean
// them. None may reach the backend.
func testPathConfusion(t *testing.T, s *Stack, addr string) {
	targets := []string{
		"/api/auth/../v1/todos", "/api/auth/./../v1/todos", "/api/auth/%2e%2e/v1/todos", "/api/auth/%2E%2E/v1/todos",
		"/api/auth/.%2e/v1/todos", "/api/auth/%2e./v1/todos", "/api/auth%2f..%2fv1%2ftodos", "/api/auth/..%2fv1/todos",
		"/api/auth/..%2Fv1/todos", "/api/auth/%2e%2e%2fv1%2ftodos", "/api/auth/%252e%252e/v1/todos", "/api/auth/..%252fv1/todos",
		"/api/auth/%c0%ae%c0%ae/v1/todos", "/api/auth/\u2024\u2024/v1/todos", "/api/auth/..\\v1\\todos", "/api/auth/..%5cv1/todos",
		"/api/auth/..%5Cv1%5Ctodos", "/api/auth/%00/../v1/todos", "/api/auth/%00../v1/todos", "/api/auth;/../v1/todos",
		"/api/auth;x=y/../v1/todos", "/api/auth/..;/v1/todos", "/api/auth/sign-in/..;/../v1/todos", "/api/v1;/todos",
		"/api//v1/todos", "//api/v1/todos", "/api/v1//todos", "///api/v1/todos", "/API/v1/todos", "/Api/V1/Todos",
		"/api/AUTH/../v1/todos", "/healthz/../api/v1/todos", "/readyz/..%2fapi/v1/todos", "/api/auth/ok/../../v1/todos",
		"/api/auth/../../api/v1/todos", "/./api/v1/todos", "/api/./v1/todos", "/api/v1/todos/.", "/api/v1/todos/..",
		"/api/auth/%2F../v1/todos", "/api/auth%23/../v1/todos", "/api/auth%3f/../v1/todos", "/api/auth/%09../v1/todos",
		"/api/auth/.. /v1/todos", "/api/auth/..%20/v1/todos", "/api/v1/todos%00", "/api/auth/..%00/v1/todos",
		"/api/%61uth/../v1/todos", "/%61pi/v1/todos", "/api/v1/%74odos", "api/v1/todos", "*",
		"http://" + s.Backend.Addr + "/api/v1/todos", "http://127.0.0.1:1/api/v1/todos", "//" + s.Backend.Addr + "/api/v1/todos",
	}
	for _, target := range targets {
		m := marker(target)
		full := target
		if target != "*" {
			if strings.Contains(target, "?") {
				full += "&" + m
			} else {
				full += "?" + m
			}
		}
		for _, method := range []string{"GET", "DELETE"} {
			r := rawGet(t, addr, method, full)
			if r.Status >= 200 && r.Status < 300 {
				t.Errorf("%s %q: %s, want a refusal", method, target, r)
			}
			s.Seen.AssertUnseen(t, method+" "+target, r, m)
		}
	}
	// Servlet path parameters: a sidecar in front of Tomcat, Jetty or Spring
	// must not forward "..;" (read there as "..") to any upstream, authsvc
	// included (issue 12): refused as a bad path, whatever the route.
	for _, target := range []string{"/api/auth/..;/v1/todos", "/api/auth/..;x=1/v1/todos", "/api/auth;/sign-in/email",
		"/api/auth/%3b/v1/todos", "/api/auth/..%3B/v1/todos", "/api/v1/todos;jsessionid=1", "/index.html;.js"} {
		r := rawGet(t, addr, "GET", target)
		if r.Status != http.StatusBadRequest || r.Code() != "BAD_PATH" {
			t.Errorf("GET %q: %s, want 400 BAD_PATH", target, r)
		}
	}
	// NUL and other raw control bytes in the request line.
	for _, target := range []string{"/api/auth/\x00/../v1/todos", "/api/auth/..\x00/v1/todos", "/api/auth/\t../v1/todos", "/api/auth/..\r/v1/todos"} {
		m := marker("raw control")
		r := rawGet(t, addr, "GET", target+"?"+m)
		if r.Status >= 200 && r.Status < 300 {
			t.Errorf("GET %q: %s, want a refusal", target, r)
		}
		s.Seen.AssertUnseen(t, fmt.Sprintf("GET %q", target), r, m)
	}
}

// Cookie-authenticated unsafe requests from anywhere but our own origin are
// 403 INVALID_ORIGIN at the proxy (and at authsvc for its own routes).
func testCSRF(t *testing.T, s *Stack, a *User, addr string, todoID int64) {
	u, _ := url.Parse(s.URL + "/api/")
	var access, session string
	for _, c := range a.Client.Jar.Cookies(u) {
		switch c.Name {
		case "better-auth.access_token":
			access = c.Value
		case "better-auth.session_token":
			session = c.Value
		}
	}
	if access == "" || session == "" {
		t.Fatalf("a's cookies: access %q session %q", access, session)
	}
	cookie := "Cookie: better-auth.access_token=" + access + "; better-auth.session_token=" + session
	json := "Content-Type: application/json"
	self := "http://" + addr
	_, port, _ := strings.Cut(addr, ":")
	// What a hostile page can make a browser send (one Origin, or none).
	browser := [][]string{
		{"Origin: http://evil.example"}, {"Origin: null"}, {}, {"Referer: http://evil.example/"},
		{"Origin: http://127.0.0.1:" + port + ".evil.example"}, {"Origin: http://evil.example/" + self},
		{"Origin: https://" + addr}, {"Origin: http://127.0.0.1:1"}, {"Origin: http://localhost:" + port},
		{"Origin: http://evil.example", "X-Forwarded-Host: evil.example"},
		{"Origin: https://" + addr, "X-Forwarded-Proto: https"}, {"Origin: http://evil.example", "Forwarded: host=evil.example"},
	}
	// Shapes no browser sends; the proxy refuses them too (no guessing
	// which Origin counts).
	odd := [][]string{
		{"Origin: " + self, "Origin: http://evil.example"}, {"Origin: http://evil.example", "Origin: " + self},
		{"Origin: " + self + ", http://evil.example"}, {"Origin: http://user@" + addr}, {"Origin: " + self + "/path"},
		{"Origin: " + self + "?x"}, {"Origin: "}, {"Referer: " + self + "/"},
	}
	routes := []struct{ method, path, body string }{
		{"POST", "/api/v1/todos", `{"title":"csrf"}`},
		{"PATCH", fmt.Sprintf("/api/v1/todos/%d", todoID), `{"title":"csrf"}`},
		{"PUT", fmt.Sprintf("/api/v1/todos/%d", todoID), `{"title":"csrf"}`},
		{"DELETE", fmt.Sprintf("/api/v1/todos/%d", todoID), ""},
	}
	for _, o := range append(slices.Clone(browser), odd...) {
		for _, rt := range routes {
			for _, ct := range []string{json, "Content-Type: text/plain"} {
				m := marker("csrf")
				r := rawReq(t, addr, rt.method, rt.path+"?"+m, rt.body, append([]string{cookie, ct}, o...)...)
				if r.Status != http.StatusForbidden || r.Code() != "INVALID_ORIGIN" {
					t.Errorf("%s %s with %q (%s): %s, want 403 INVALID_ORIGIN", rt.method, rt.path, o, ct, r)
				}
				s.Seen.AssertUnseen(t, fmt.Sprintf("csrf %s %q", rt.method, o), r, m)
			}
		}
	}
	// authsvc's own cookie routes: sign-out and sign-out-everywhere.
	for _, o := range browser {
		for _, path := range []string{"/api/auth/sign-out", "/api/auth/revoke-sessions", "/api/auth/revoke-other-sessions"} {
			if r := rawReq(t, addr, "POST", path, "{}", append([]string{cookie, json}, o...)...); r.Status != http.StatusForbidden {
				t.Errorf("POST %s with %q: %s, want 403", path, o, r)
			}
		}
	}
	// Control: the same cookies from our own origin work, and the session
	// survived every forged sign-out above.
	if r := rawReq(t, addr, "POST", "/api/v1/todos", `{"title":"same origin"}`, cookie, json, "Origin: "+self); r.Status != http.StatusCreated {
		t.Errorf("same-origin cookie POST: %s, want 201", r)
	}
	if got := rawGet(t, addr, "GET", "/api/auth/get-session", "Cookie: better-auth.session_token="+session); strings.TrimSpace(string(got.Body)) == "null" {
		t.Errorf("a's session ended by a cross-origin request")
	}
	if got := rawGet(t, addr, "GET", fmt.Sprintf("/api/v1/todos/%d", todoID), cookie); !strings.Contains(string(got.Body), `"title":"a's"`) {
		t.Errorf("a's todo changed by a cross-origin request: %s", got)
	}
	// For the report: how authsvc treats shapes no browser sends, on a route
	// that does not end the current session.
	for _, o := range odd {
		r := rawReq(t, addr, "POST", "/api/auth/revoke-other-sessions", "{}", append([]string{cookie, json}, o...)...)
		t.Logf("authsvc revoke-other-sessions with %q: %d %s", o, r.Status, r.Code())
	}
}

// Two candidate tokens are never resolved by picking one.
func testSmuggling(t *testing.T, s *Stack, addr, ta, tb string) {
	rows := [][]string{
		{"Authorization: Bearer " + ta, "Authorization: Bearer " + ta},
		{"Authorization: Bearer " + ta, "authorization: Bearer " + tb},
		{"Authorization: Bearer garbage.garbage.garbage", "Authorization: Bearer " + ta},
		{"Authorization: Bearer " + ta + ", Bearer " + tb},
		{"Authorization: Bearer " + ta + " " + tb},
		{"Authorization: Bearer " + ta, "Cookie: better-auth.access_token=" + tb},
		{"Authorization: Bearer x.y.z", "Cookie: better-auth.access_token=" + ta},
		{"Cookie: better-auth.access_token=" + ta + "; better-auth.access_token=" + tb},
		{"Cookie: better-auth.access_token=" + ta, "Cookie: better-auth.access_token=" + tb},
		{"Cookie: better-auth.access_token=" + tb, "Cookie: __Secure-better-auth.access_token=" + ta},
		{"Cookie: better-auth.access_token=" + ta + "; BETTER-AUTH.ACCESS_TOKEN=" + tb, "Authorization: Bearer " + tb},
		{"Authorization: Basic " + b64.EncodeToString([]byte(ta))},
		{"Authorization: " + ta},
		{"Proxy-Authorization: Bearer " + ta},
		{"X-Access-Token: " + ta},
		{"Cookie: better-auth.session_token=" + ta},
		{"Cookie: access_token=" + ta},
	}
	for i, row := range rows {
		m := marker(fmt.Sprintf("smuggle %d", i))
		r := rawGet(t, addr, "GET", "/api/v1/todos?"+m, row...)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("row %d %.120q: %s, want 401", i, row, r)
		}
		s.Seen.AssertUnseen(t, fmt.Sprintf("smuggle row %d", i), r, m)
	}
}

func testOversized(t *testing.T, s *Stack, addr, ta string) {
	big := strings.Repeat("a", 200<<10)
	cases := []struct {
		name   string
		method string
		target string
		body   string
		lines  []string
		want   []int
	}{
		{"200 KiB header", "GET", "/api/v1/todos", "", []string{"X-Big: " + big}, []int{431}},
		{"2000 headers", "GET", "/api/v1/todos", "", manyHeaders(2000), []int{431}},
		{"200 KiB URL", "GET", "/api/v1/todos?x=" + big[:100<<10], "", nil, []int{414, 431, 400}},
		{"9 KiB bearer", "GET", "/api/v1/todos", "", []string{"Authorization: Bearer " + big[:9<<10]}, []int{401}},
		{"9 KiB access cookie", "GET", "/api/v1/todos", "", []string{"Cookie: better-auth.access_token=" + big[:9<<10]}, []int{401}},
		{"2 MiB body without a token", "POST", "/api/v1/todos", `{"title":"` + strings.Repeat("a", 2<<20) + `"}`, []string{"Content-Type: application/json"}, []int{401}},
	}
	for _, c := range cases {
		m := marker(c.name)
		target := c.target + "?" + m
		if strings.Contains(c.target, "?") {
			target = c.target + "&" + m
		}
		r := rawReq(t, addr, c.method, target, c.body, c.lines...)
		if !slices.Contains(c.want, r.Status) {
			t.Errorf("%s: %d, want one of %v", c.name, r.Status, c.want)
		}
		s.Seen.AssertUnseen(t, c.name, r, m)
	}
	// With a token the backend answers 413 itself (over 64 KiB).
	r := rawReq(t, addr, "POST", "/api/v1/todos", `{"title":"`+big[:70<<10]+`"}`, "Authorization: Bearer "+ta, "Content-Type: application/json")
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("70 KiB todo with a token: %d, want 413", r.Status)
	}
	// authsvc: a 2 MiB sign-in body is refused, not parsed.
	r = rawReq(t, addr, "POST", "/api/auth/sign-in/email", `{"email":"a@example.com","password":"`+strings.Repeat("a", 2<<20)+`"}`,
		"Content-Type: application/json", "Origin: http://"+addr)
	if r.Status != http.StatusRequestEntityTooLarge && r.Status != http.StatusBadRequest {
		t.Errorf("2 MiB sign-in body: %s, want 413 or 400", r)
	}
}

func manyHeaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-H%d: %s", i, strings.Repeat("v", 40))
	}
	return out
}
