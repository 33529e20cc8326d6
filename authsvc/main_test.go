package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const testSecret = "test-secret-0123456789abcdef-0123456789"

// testEnv is a minimal valid environment with cheap argon2id parameters
// (the real defaults are exercised in internal/password and one test here).
func testEnv(t testing.TB, dbURL string) map[string]string {
	return map[string]string{
		"AUTHSVC_ADDR":              testenv.FreeAddr(t),
		"AUTHSVC_METRICS_ADDR":      testenv.FreeAddr(t),
		"DATABASE_URL":              dbURL,
		"AUTH_SECRET":               testSecret,
		"AUTH_BASE_URL":             "http://localhost:8080",
		"PASSWORD_HASH_MEMORY_KIB":  "1024",
		"PASSWORD_HASH_ITERATIONS":  "1",
		"PASSWORD_HASH_CONCURRENCY": "2",
		"LOG_LEVEL":                 "warn",
	}
}

// instance is one running authsvc started through run().
type instance struct {
	base string // http://127.0.0.1:port
	env  map[string]string
	logs *testenv.LogBuffer
}

// start runs authsvc with env until the test ends, waiting for /readyz.
func start(t testing.TB, env map[string]string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	logs := &testenv.LogBuffer{}
	go func() {
		errc <- run(ctx, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, logs, logs)
	}()
	in := &instance{base: "http://" + env["AUTHSVC_ADDR"], env: env, logs: logs}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			t.Fatalf("run exited during start-up: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(in.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("authsvc not ready at %s\n%s", in.base, logs.String())
	return nil
}

// startDefault starts an instance on a fresh database.
func startDefault(t testing.TB, overrides ...string) *instance {
	t.Helper()
	env := testEnv(t, testenv.Database(t))
	for i := 0; i+1 < len(overrides); i += 2 {
		env[overrides[i]] = overrides[i+1]
	}
	return start(t, env)
}

// browser is an HTTP client that behaves like a same-origin page: it keeps
// cookies and sends Origin on unsafe requests.
type browser struct {
	t      testing.TB
	c      *http.Client
	base   string
	origin string
}

func newBrowser(t testing.TB, in *instance) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, base: in.base, origin: "http://localhost:8080"}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errCode(t testing.TB) string {
	t.Helper()
	var e struct{ Code, Message string }
	r.json(t, &e)
	if e.Message == "" {
		t.Errorf("error body %s has no message", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return e.Code
}

func (b *browser) do(method, path string, body any, hdr ...string) response {
	b.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet && b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base + "/api/auth")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// signUp creates an account and fails the test unless it succeeds.
func (b *browser) signUp(email, pw string) response {
	b.t.Helper()
	r := b.do("POST", "/api/auth/sign-up/email", map[string]any{"name": "Ada Lovelace", "email": email, "password": pw})
	if r.status != http.StatusOK {
		b.t.Fatalf("sign-up %s: %d %s", email, r.status, r.body)
	}
	return r
}

// setCookies parses the response's Set-Cookie lines by name.
func setCookies(h http.Header) map[string]string {
	out := map[string]string{}
	for _, line := range h.Values("Set-Cookie") {
		name, _, _ := strings.Cut(line, "=")
		out[name] = line
	}
	return out
}
