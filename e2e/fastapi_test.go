package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// startFastAPI runs examples/fastapi (Debian's python3 and packages, the
// "fastapi" set) on a fresh database on loopback, until the test ends.
func startFastAPI(t *testing.T) *Proc { return startFastAPIApp(t, "fastapi") }

// startFastAPIApp runs the app of examples/fastapi ("fastapi") or of its
// seed/ ("fastapi-seed", which needs env such as JWT_SECRET).
func startFastAPIApp(t *testing.T, name string, env ...string) *Proc {
	t.Helper()
	if err := devenv.Install(devenv.TestPackages["fastapi"]...); err != nil {
		t.Fatalf("install the fastapi example's packages: %v", err)
	}
	dir, _ := filepath.Abs(filepath.Join("..", "examples", "fastapi"))
	script := filepath.Join(dir, "serve.py")
	if name == "fastapi-seed" { // Proc runs a program without arguments
		script = filepath.Join(t.TempDir(), "serve-seed")
		body := fmt.Sprintf("#!/bin/sh\nexec %q %q\n", filepath.Join(dir, "serve.py"), filepath.Join(dir, "seed"))
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &Proc{Name: name, Addr: testenv.FreeAddr(t), bin: script}
	p.env = append([]string{"DATABASE_URL=" + testenv.Database(t), "BACKEND_ADDR=" + p.Addr, "LOG_LEVEL=warning", "WEB_CONCURRENCY=1"}, env...)
	t.Cleanup(func() {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", name, err)
		}
		if t.Failed() {
			t.Logf("---- %s logs ----\n%s", name, p.Logs())
		}
	})
	p.start(t)
	p.WaitReady(t)
	return p
}

// startFastAPIStack is a whole stack whose proxy forwards /api/* to the
// FastAPI example (through a recording relay, Stack.Seen) instead of the Go
// backend. The Go backend still runs; nothing reaches it.
func startFastAPIStack(t *testing.T, o Options, env ...string) (*Stack, *Proc) {
	t.Helper()
	fa := startFastAPIApp(t, "fastapi", env...)
	rec := startRecorder(t, fa.Addr)
	o.ProxyEnv = append(o.ProxyEnv, "BACKEND_URL=http://"+rec.Addr) // the last value wins
	s := StartStack(t, o)
	s.Seen = rec
	return s, fa
}

// The FastAPI example behind the proxy passes the Go backend's cases: CRUD
// with a bearer token and with the cookies alone, users isolated from each
// other (another user's todo is 404), every spelling of a spoofed identity
// stripped at the proxy; and the app itself refuses a request that did not
// come through the proxy.
func TestFastAPIBehindProxy(t *testing.T) {
	t.Parallel()
	s, fa := startFastAPIStack(t, Options{})
	a, b := s.NewUser(t), s.NewUser(t)
	a.SignUp("fa-a@example.com", pw)
	b.SignUp("fa-b@example.com", pw)
	aID, bID := a.userID(), b.userID()

	t.Run("crud", func(t *testing.T) {
		bearer := s.NewUser(t)
		bearer.Client.Jar = nil
		bearer.Bearer = a.Token()
		crud(t, bearer, aID) // bearer only
		crud(t, a, aID)      // the HttpOnly access cookie only
	})
	t.Run("wire", func(t *testing.T) { testFastAPIWire(t, a, aID) })
	t.Run("isolation", func(t *testing.T) { testIsolation(t, a, b, bID) })
	t.Run("spoofing", func(t *testing.T) {
		td := a.CreateTodo("a's, for the spoofing rows")
		testSpoofing(t, s, hostOf(s.URL), a.Token(), aID, bID, td.ID)
	})
	t.Run("direct", func(t *testing.T) {
		for _, h := range [][]string{nil, {"X-User-ID", ""}, {"X-User-ID", "a b"}, {"X-User-ID", "a,b"},
			{"X-User-ID", strings.Repeat("a", 129)}, {"X-User-ID", aID, "X-User-ID", bID}} {
			req, _ := http.NewRequest("GET", "http://"+fa.Addr+"/api/v1/todos", nil)
			for i := 0; i+1 < len(h); i += 2 {
				req.Header[h[i]] = append(req.Header[h[i]], h[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"UNAUTHENTICATED"`) {
				t.Errorf("straight to FastAPI with %q: %d %s, want 401 UNAUTHENTICATED", h, resp.StatusCode, body)
			}
		}
	})
}

// testIsolation: b can neither read, change nor delete a's todo through any
// route form (404, as for a missing one), and b's list never holds it; a's
// token with a spoofed identity header still acts as a.
func testIsolation(t *testing.T, a, b *User, bID string) {
	at := a.CreateTodo("a's secret")
	bt := b.CreateTodo("b's")
	for _, tc := range []struct{ method, body string }{{"GET", ""}, {"PATCH", `{"title":"pwned"}`}, {"DELETE", ""}} {
		for _, p := range []string{"/api/v1/todos/%d", "/api/v1/todos/%d/"} {
			path := fmt.Sprintf(p, at.ID)
			if r := b.Do(tc.method, path, tc.body); r.Status != http.StatusNotFound || r.Code() != "TODO_NOT_FOUND" {
				t.Errorf("b %s %s = %s, want 404 TODO_NOT_FOUND", tc.method, path, r)
			}
		}
	}
	for _, x := range b.Todos() {
		if x.ID == at.ID || x.UserID != bt.UserID {
			t.Errorf("b's list holds %+v", x)
		}
	}
	for _, h := range [][]string{{"X-User-ID", bID}, {"x-user-id", bID}, {"X_User_Id", bID}, {"X-User-Id", bID, "X-User-Id", bID}} {
		for _, x := range a.Todos() {
			if x.UserID != at.UserID {
				t.Errorf("spoof %v: a saw %+v", h, x)
			}
		}
		if r := a.Do("DELETE", fmt.Sprintf("/api/v1/todos/%d", bt.ID), "", h...); r.Status != http.StatusNotFound {
			t.Errorf("spoof %v: a deleting b's todo = %s, want 404", h, r)
		}
	}
	if r := a.Do("GET", fmt.Sprintf("/api/v1/todos/%d", at.ID), ""); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "a's secret") {
		t.Errorf("a's todo after b's attempts: %s", r)
	}
}

// testFastAPIWire checks the parts of the todo API (docs/openapi.json) the Next.js
// example relies on, so one frontend works against either backend.
func testFastAPIWire(t *testing.T, u *User, uid string) {
	r := u.Do("POST", "/api/v1/todos/", `{"title":"  padded  ","completed":true}`)
	var td struct {
		ID        int64
		Title     string
		Completed bool
		UserID    string `json:"user_id"`
		CreatedAt string `json:"created_at"`
	}
	r.JSON(t, &td)
	if r.Status != http.StatusCreated || r.Header.Get("Location") != fmt.Sprintf("/api/v1/todos/%d", td.ID) ||
		td.Title != "padded" || !td.Completed || td.UserID != uid {
		t.Errorf("create: %s (Location %q)", r, r.Header.Get("Location"))
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", td.CreatedAt); err != nil {
		t.Errorf("created_at %q: want RFC 3339 UTC with milliseconds", td.CreatedAt)
	}
	for _, c := range []struct {
		method, path, body, ctype string
		status                    int
		code                      string
	}{
		{"POST", "/api/v1/todos", `{"title":""}`, "", 400, "INVALID_TITLE"},
		{"POST", "/api/v1/todos", `{}`, "", 400, "INVALID_TITLE"},
		{"POST", "/api/v1/todos", `{"title":"x","owner":"b"}`, "", 400, "UNKNOWN_FIELD"},
		{"POST", "/api/v1/todos", `{"title":1}`, "", 400, "INVALID_TYPE"},
		{"POST", "/api/v1/todos", `{"title":`, "", 400, "INVALID_JSON"},
		{"POST", "/api/v1/todos", `{"title":"x"}`, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"POST", "/api/v1/todos", `{"title":"` + strings.Repeat("x", 70<<10) + `"}`, "", 413, "PAYLOAD_TOO_LARGE"},
		{"PATCH", fmt.Sprintf("/api/v1/todos/%d", td.ID), `{}`, "", 400, "EMPTY_PATCH"},
		{"GET", "/api/v1/todos/abc", "", "", 400, "INVALID_ID"},
		{"GET", "/api/v1/todos?limit=101", "", "", 400, "INVALID_QUERY"},
		{"GET", "/api/v1/todos/999999", "", "", 404, "TODO_NOT_FOUND"},
	} {
		r := u.Do(c.method, c.path, c.body)
		if c.ctype != "" {
			r = doWithType(t, u, c.method, c.path, c.body, c.ctype)
		}
		if r.Status != c.status || r.Code() != c.code {
			t.Errorf("%s %s %.40q: %.200s, want %d %s", c.method, c.path, c.body, r, c.status, c.code)
		}
	}
	// Pagination: a Link to the next page when more remain.
	for i := 0; i < 3; i++ {
		u.CreateTodo(fmt.Sprintf("page %d", i))
	}
	r = u.Do("GET", "/api/v1/todos?limit=2", "")
	if r.Status != http.StatusOK || !strings.Contains(r.Header.Get("Link"), `rel="next"`) {
		t.Errorf("list with limit=2: %s, Link %q", r, r.Header.Get("Link"))
	}
}

// doWithType is u.Do with a Content-Type other than JSON.
func doWithType(t *testing.T, u *User, method, path, body, ctype string) Resp {
	t.Helper()
	req, _ := http.NewRequest(method, u.s.URL+path, strings.NewReader(body))
	req.Header.Set("Origin", u.s.URL)
	req.Header.Set("Content-Type", ctype)
	resp, err := u.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Resp{resp.StatusCode, resp.Header, b}
}

// The FastAPI example refuses to listen anywhere but loopback: anyone else
// reaching it could send their own X-User-ID.
func TestFastAPIRefusesPublicAddress(t *testing.T) {
	t.Parallel()
	if err := devenv.Install(devenv.TestPackages["fastapi"]...); err != nil {
		t.Fatalf("install the fastapi example's packages: %v", err)
	}
	serve, _ := filepath.Abs(filepath.Join("..", "examples", "fastapi", "serve.py"))
	cmd := exec.Command(serve)
	cmd.Env = []string{"DATABASE_URL=postgres://unused@127.0.0.1:1/x", "BACKEND_ADDR=0.0.0.0:" + strings.Split(testenv.FreeAddr(t), ":")[1]}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "BACKEND_ADDR") || !strings.Contains(string(out), "loopback") {
		t.Errorf("serve.py on 0.0.0.0: err %v, output %s; want a refusal naming BACKEND_ADDR", err, out)
	}
}

// Way 3 of docs/migrating.md, the transition on the shared secret: authsvc
// and the proxy run with the secret the seed's python-jose code uses, so one
// HS256 token from authsvc is accepted by the seed backend (still verifying
// it itself) and, through the proxy, by the app without JWT code. A token
// signed with another secret is refused by both.
func TestSharedSecretTransition(t *testing.T) {
	t.Parallel()
	secretBytes := make([]byte, 32)
	_, _ = rand.Read(secretBytes)
	secret := hex.EncodeToString(secretBytes)
	s, _ := startFastAPIStack(t, Options{AuthEnv: []string{"JWT_SECRET=" + secret}, ProxyEnv: []string{"JWT_SECRET=" + secret}})
	seed := startFastAPIApp(t, "fastapi-seed", "JWT_SECRET="+secret, "JWT_ISSUER="+s.URL, "JWT_AUDIENCE="+s.URL)
	u := s.NewUser(t)
	u.SignUp("transition@example.com", pw)
	uid, tok := u.userID(), u.Token()
	if alg := headerOf(t, tok)["alg"]; alg != "HS256" {
		t.Fatalf("authsvc with JWT_SECRET issued alg %v, want HS256", alg)
	}
	var claims map[string]any
	b, _ := b64.DecodeString(strings.Split(tok, ".")[1])
	_ = json.Unmarshal(b, &claims)
	claims["sub"] = "someone-else"
	forged := jws(headerOf(t, tok), claims, hsSigner([]byte("another secret, 32 bytes or more!!")))

	seedURL := "http://" + seed.Addr
	if r := bearerGet(t, seedURL, "/api/v1/todos", tok); r.Status != http.StatusOK {
		t.Errorf("seed backend (python-jose) with authsvc's HS256 token: %s", r)
	}
	if r := bearerGet(t, s.URL, "/api/v1/todos", tok); r.Status != http.StatusOK {
		t.Errorf("proxy + FastAPI with authsvc's HS256 token: %s", r)
	}
	bearer := s.NewUser(t)
	bearer.Client.Jar, bearer.Bearer = nil, tok
	if td := bearer.CreateTodo("through the proxy"); td.UserID != uid {
		t.Errorf("todo through the proxy has user_id %q, want %q", td.UserID, uid)
	}
	for _, base := range []string{seedURL, s.URL} {
		if r := bearerGet(t, base, "/api/v1/todos", forged); r.Status != http.StatusUnauthorized {
			t.Errorf("%s with a token signed by another secret: %s, want 401", base, r)
		}
	}
}
