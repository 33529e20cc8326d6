package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var msTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestSignUpSetsCookiesAndReturnsUser(t *testing.T) {
	t.Parallel()
	in := startDefault(t, "SESSION_TTL", "48h", "JWT_TTL", "10m")
	b := newBrowser(t, in)
	r := b.signUp("Ada@Example.COM", "correct horse")
	var got struct {
		Token string         `json:"token"`
		User  map[string]any `json:"user"`
	}
	r.json(t, &got)
	if len(got.Token) < 43 {
		t.Errorf("session token %q: want at least 256 bits", got.Token)
	}
	u := got.User
	if u["email"] != "ada@example.com" || u["name"] != "Ada Lovelace" || u["emailVerified"] != false || u["image"] != nil {
		t.Errorf("user = %v", u)
	}
	for _, k := range []string{"createdAt", "updatedAt"} {
		if s, _ := u[k].(string); !msTime.MatchString(s) {
			t.Errorf("user.%s = %v, want RFC 3339 with milliseconds", k, u[k])
		}
	}
	if _, ok := u["passwordHash"]; ok || strings.Contains(string(r.body), "argon2") {
		t.Errorf("response leaks the password hash: %s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	sc := setCookies(r.header)
	sess := sc["better-auth.session_token"]
	want := "better-auth.session_token=" + got.Token + ".*%3D; Max-Age=172800; Path=/; HttpOnly; SameSite=Lax"
	if !regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(want), `\.\*`, ".*") + "$").MatchString(sess) {
		t.Errorf("session cookie = %q\nwant like %q", sess, want)
	}
	acc := sc["better-auth.access_token"]
	if !regexp.MustCompile(`^better-auth\.access_token=[\w-]+\.[\w-]+\.[\w-]+; Max-Age=600; Path=/api; HttpOnly; SameSite=Lax$`).MatchString(acc) {
		t.Errorf("access cookie = %q", acc)
	}
}

func TestSignUpErrors(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	b := newBrowser(t, in)
	b.signUp("taken@example.com", "sturdy-otter-42")
	long := strings.Repeat("x", 129)
	for _, tt := range []struct {
		name       string
		body       any
		hdr        []string
		wantStatus int
		wantCode   string
	}{
		{"bad email", map[string]any{"name": "a", "email": "not-an-email", "password": "sturdy-otter-42"}, nil, 400, "INVALID_EMAIL"},
		{"short password", map[string]any{"name": "a", "email": "a@example.com", "password": "short"}, nil, 400, "PASSWORD_TOO_SHORT"},
		{"long password", map[string]any{"name": "a", "email": "a@example.com", "password": long}, nil, 400, "PASSWORD_TOO_LONG"},
		{"taken email in another case", map[string]any{"name": "a", "email": "TAKEN@example.com", "password": "sturdy-otter-42"}, nil, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"},
		{"missing name", map[string]any{"email": "a@example.com", "password": "sturdy-otter-42"}, nil, 400, "VALIDATION_ERROR"},
		{"wrong type", map[string]any{"name": "a", "email": 5, "password": "sturdy-otter-42"}, nil, 400, "VALIDATION_ERROR"},
		{"bad JSON", `{"name":`, nil, 400, "BAD_REQUEST"},
		{"form content type", `name=a`, []string{"Content-Type", "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"too large", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "PAYLOAD_TOO_LARGE"},
		{"untrusted origin", map[string]any{"name": "a", "email": "b@example.com", "password": "sturdy-otter-42"}, []string{"Origin", "https://evil.example"}, 403, "INVALID_ORIGIN"},
		{"cross-site form post", map[string]any{"name": "a", "email": "b@example.com", "password": "sturdy-otter-42"},
			[]string{"Origin", "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}, 403, "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED"},
		{"fetch without origin", map[string]any{"name": "a", "email": "b@example.com", "password": "sturdy-otter-42"},
			[]string{"Origin", "", "Sec-Fetch-Mode", "cors"}, 403, "MISSING_OR_NULL_ORIGIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newBrowser(t, in).do("POST", "/api/auth/sign-up/email", tt.body, tt.hdr...)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", r.status, tt.wantStatus, r.body)
			}
			if code := r.errCode(t); code != tt.wantCode {
				t.Errorf("code = %q, want %q", code, tt.wantCode)
			}
			if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("error sets cookies: %q", sc)
			}
		})
	}
}

func TestSignInWrongPasswordAndUnknownEmailAreIdentical(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	newBrowser(t, in).signUp("grace@example.com", "hopper-1906")
	wrong := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "grace@example.com", "password": "not-her-password"})
	unknown := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "nobody@example.com", "password": "not-her-password"})
	if wrong.status != 401 || unknown.status != 401 {
		t.Fatalf("status wrong=%d unknown=%d, want 401", wrong.status, unknown.status)
	}
	if string(wrong.body) != string(unknown.body) {
		t.Errorf("bodies differ:\nwrong password: %s\nunknown email:  %s", wrong.body, unknown.body)
	}
	if code := wrong.errCode(t); code != "INVALID_EMAIL_OR_PASSWORD" {
		t.Errorf("code = %q", code)
	}
}

func TestSignInAndSessionLifecycle(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	newBrowser(t, in).signUp("linus@example.com", "penguin-penguin")
	b := newBrowser(t, in)

	// No session yet: null, and /token is 401.
	if r := b.do("GET", "/api/auth/get-session", nil); r.status != 200 || strings.TrimSpace(string(r.body)) != "null" {
		t.Fatalf("get-session without cookie = %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/api/auth/token", nil); r.status != 401 || r.errCode(t) != "UNAUTHORIZED" {
		t.Fatalf("token without session = %d %s", r.status, r.body)
	}

	r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "LINUS@example.com", "password": "penguin-penguin", "rememberMe": true})
	if r.status != 200 {
		t.Fatalf("sign-in = %d %s", r.status, r.body)
	}
	var in1 struct {
		Redirect *bool          `json:"redirect"`
		Token    string         `json:"token"`
		User     map[string]any `json:"user"`
	}
	r.json(t, &in1)
	if in1.Redirect == nil || *in1.Redirect || in1.Token == "" || in1.User["email"] != "linus@example.com" {
		t.Errorf("sign-in body = %s", r.body)
	}

	r = b.do("GET", "/api/auth/get-session", nil, "User-Agent", "test-agent/1")
	if r.status != 200 {
		t.Fatalf("get-session = %d %s", r.status, r.body)
	}
	var gs struct {
		Session map[string]any `json:"session"`
		User    map[string]any `json:"user"`
	}
	r.json(t, &gs)
	if gs.Session["token"] != in1.Token || gs.Session["userId"] != in1.User["id"] || gs.Session["id"] == "" {
		t.Errorf("session = %v", gs.Session)
	}
	for _, k := range []string{"expiresAt", "createdAt", "updatedAt"} {
		if s, _ := gs.Session[k].(string); !msTime.MatchString(s) {
			t.Errorf("session.%s = %v", k, gs.Session[k])
		}
	}
	if exp, _ := time.Parse(time.RFC3339, gs.Session["expiresAt"].(string)); time.Until(exp) < 167*time.Hour {
		t.Errorf("session expires %v, want about SESSION_TTL (168h) from now", exp)
	}
	if _, ok := gs.Session["tokenHash"]; ok {
		t.Errorf("session exposes its hash: %v", gs.Session)
	}
	if jwt := r.header.Get("Set-Auth-Jwt"); strings.Count(jwt, ".") != 2 {
		t.Errorf("set-auth-jwt = %q", jwt)
	}
	if got := r.header.Get("Access-Control-Expose-Headers"); got != "set-auth-jwt" {
		t.Errorf("Access-Control-Expose-Headers = %q", got)
	}
	if _, ok := setCookies(r.header)["better-auth.access_token"]; !ok {
		t.Errorf("get-session did not set the access cookie")
	}

	r = b.do("GET", "/api/auth/token", nil)
	var tok struct{ Token string }
	r.json(t, &tok)
	if r.status != 200 || strings.Count(tok.Token, ".") != 2 {
		t.Fatalf("token = %d %s", r.status, r.body)
	}

	// Sign-out needs a trusted Origin because it carries the cookie.
	if r := b.do("POST", "/api/auth/sign-out", map[string]any{}, "Origin", ""); r.status != 403 || r.errCode(t) != "MISSING_OR_NULL_ORIGIN" {
		t.Fatalf("sign-out without Origin = %d %s", r.status, r.body)
	}
	if r := b.do("POST", "/api/auth/sign-out", map[string]any{}, "Origin", "http://evil.example"); r.status != 403 || r.errCode(t) != "INVALID_ORIGIN" {
		t.Fatalf("sign-out from evil origin = %d %s", r.status, r.body)
	}
	session := b.cookie("better-auth.session_token")
	r = b.do("POST", "/api/auth/sign-out", nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"success":true}` {
		t.Fatalf("sign-out = %d %s", r.status, r.body)
	}
	sc := setCookies(r.header)
	if sc["better-auth.session_token"] != "better-auth.session_token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" ||
		sc["better-auth.access_token"] != "better-auth.access_token=; Max-Age=0; Path=/api; HttpOnly; SameSite=Lax" {
		t.Errorf("sign-out cookies = %q", r.header.Values("Set-Cookie"))
	}
	if r := b.do("GET", "/api/auth/get-session", nil); strings.TrimSpace(string(r.body)) != "null" {
		t.Errorf("get-session after sign-out = %s", r.body)
	}
	if r := b.do("GET", "/api/auth/token", nil); r.status != 401 {
		t.Errorf("token after sign-out = %d", r.status)
	}
	// The old cookie replayed (e.g. stolen before sign-out) is dead too.
	replay := newBrowser(t, in)
	r = replay.do("GET", "/api/auth/token", nil, "Cookie", "better-auth.session_token="+session)
	if r.status != 401 {
		t.Errorf("replayed cookie after sign-out: /token = %d", r.status)
	}
	if got := setCookies(r.header)["better-auth.session_token"]; !strings.Contains(got, "Max-Age=0") {
		t.Errorf("dead session cookie not expired: %q", got)
	}
}

func TestForgedSessionCookieIsIgnored(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	b := newBrowser(t, in)
	b.signUp("eve@example.com", "sturdy-otter-42")
	token := strings.SplitN(b.cookie("better-auth.session_token"), ".", 2)[0]
	for _, v := range []string{token, token + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D", "garbage"} {
		r := newBrowser(t, in).do("GET", "/api/auth/token", nil, "Cookie", "better-auth.session_token="+v)
		if r.status != 401 {
			t.Errorf("cookie %q: /token = %d, want 401", v, r.status)
		}
	}
}

func TestRememberMeFalseGivesBrowserSessionCookie(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	newBrowser(t, in).signUp("short@example.com", "sturdy-otter-42")
	r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "short@example.com", "password": "sturdy-otter-42", "rememberMe": false})
	if r.status != 200 {
		t.Fatalf("sign-in = %d %s", r.status, r.body)
	}
	if c := setCookies(r.header)["better-auth.session_token"]; strings.Contains(c, "Max-Age") {
		t.Errorf("rememberMe=false cookie has Max-Age: %q", c)
	}
}

func TestHTTPSBaseURLUsesSecureCookies(t *testing.T) {
	t.Parallel()
	in := startDefault(t, "AUTH_BASE_URL", "https://auth.example.com", "AUTH_COOKIE_PREFIX", "gh")
	b := newBrowser(t, in)
	b.origin = "https://auth.example.com"
	r := b.signUp("sec@example.com", "sturdy-otter-42")
	sc := setCookies(r.header)
	if c := sc["__Secure-gh.session_token"]; !strings.HasSuffix(c, "; Path=/; HttpOnly; Secure; SameSite=Lax") {
		t.Errorf("session cookie = %q", c)
	}
	if c := sc["__Secure-gh.access_token"]; !strings.HasSuffix(c, "; Path=/api; HttpOnly; Secure; SameSite=Lax") {
		t.Errorf("access cookie = %q", c)
	}
}

func TestSmallEndpointsAndErrors(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	b := newBrowser(t, in)
	if r := b.do("GET", "/api/auth/ok", nil); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"ok":true}` {
		t.Errorf("ok = %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/api/auth/nope", nil); r.status != 404 || r.errCode(t) != "NOT_FOUND" {
		t.Errorf("unknown route = %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/api/auth/sign-in/email", nil); r.status != 405 || r.errCode(t) != "METHOD_NOT_ALLOWED" || r.header.Get("Allow") != "POST" {
		t.Errorf("GET sign-in = %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/healthz", nil); r.status != 200 {
		t.Errorf("healthz = %d", r.status)
	}
	r := b.do("GET", "/api/auth/jwks", nil)
	if r.status != 200 || !strings.Contains(r.header.Get("Cache-Control"), "max-age=") {
		t.Errorf("jwks = %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
	resp, err := http.Get("http://" + in.env["AUTHSVC_METRICS_ADDR"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("metrics = %d", resp.StatusCode)
	}
}
