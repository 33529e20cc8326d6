package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// wantCSP is the policy the page is written for, spelled out here rather than
// taken from the constant, so a loosened policy fails a test.
const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	s, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(zap.NewNop(), httpx.NewMetrics("web"), &deps{site: s, lc: &httpx.Lifecycle{}}))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (r response) errCode(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" {
		t.Errorf("error body %q is not {code, message}: %v", r.body, err)
	}
	return e.Code
}

func TestAssets(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, tt := range []struct{ path, file, contentType string }{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/app.js", "app.js", "text/javascript; charset=utf-8"},
		{"/app.css", "app.css", "text/css; charset=utf-8"},
		{"/favicon.svg", "favicon.svg", "image/svg+xml"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			want, err := os.ReadFile("static/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			r := do(t, "GET", srv.URL+tt.path)
			if r.status != 200 {
				t.Fatalf("GET %s = %d %s", tt.path, r.status, r.body)
			}
			if got := r.header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if string(r.body) != string(want) {
				t.Errorf("body differs from static/%s (%d bytes, want %d)", tt.file, len(r.body), len(want))
			}
			// Not fingerprinted, so never cached without revalidation.
			if got := r.header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			etag := r.header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if c := do(t, "GET", srv.URL+tt.path, "If-None-Match", etag); c.status != http.StatusNotModified || len(c.body) != 0 {
				t.Errorf("revalidation with the ETag = %d (%d bytes), want 304 and no body", c.status, len(c.body))
			}
			h := do(t, "HEAD", srv.URL+tt.path)
			if h.status != 200 || len(h.body) != 0 || h.header.Get("Content-Type") != tt.contentType {
				t.Errorf("HEAD = %d, %d bytes, type %q", h.status, len(h.body), h.header.Get("Content-Type"))
			}
		})
	}
}

// Every answer carries the hardening headers: pages, assets, errors, health.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	want := map[string]string{
		"Content-Security-Policy":    wantCSP,
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "strict-origin-when-cross-origin",
		"X-Frame-Options":            "DENY",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for _, tt := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/app.js"}, {"GET", "/app.css"}, {"GET", "/favicon.svg"},
		{"GET", "/nope"}, {"POST", "/"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"HEAD", "/"},
	} {
		r := do(t, tt.method, srv.URL+tt.path)
		for k, v := range want {
			if got := r.header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s %s: %s = %q, want exactly %q", tt.method, tt.path, k, got, v)
			}
		}
	}
}

// No SPA fallback and no directory listing: only the listed files exist.
func TestUnknownPathsAre404(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, p := range []string{
		"/nope", "/index.html", "/static/app.js", "/app.js/", "/APP.JS", "/app.js.map",
		"/favicon.ico", "/api/v1/todos", "/todos/1", "/%2e%2e/go.mod", "/embed.go",
	} {
		r := do(t, "GET", srv.URL+p)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, r.status)
			continue
		}
		if code := r.errCode(t); code != "NOT_FOUND" {
			t.Errorf("GET %s code = %q, want NOT_FOUND", p, code)
		}
	}
}

func TestWrongMethodIs405(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, p := range []string{"/", "/app.js", "/app.css", "/favicon.svg"} {
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			r := do(t, m, srv.URL+p)
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s = %d Allow %q, want 405 Allow \"GET, HEAD\"", m, p, r.status, r.header.Get("Allow"))
			}
			if code := r.errCode(t); code != "METHOD_NOT_ALLOWED" {
				t.Errorf("%s %s code = %q", m, p, code)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t) // draining is exercised through run, in TestRunDrainsThenStops
	if r := do(t, "GET", srv.URL+"/healthz"); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("/healthz = %d %s", r.status, r.body)
	}
	if r := do(t, "GET", srv.URL+"/readyz"); r.status != 200 {
		t.Errorf("/readyz = %d %s", r.status, r.body)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cfg, err := loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8083" || cfg.MetricsAddr != ":9093" || cfg.LogLevel != "info" || cfg.ShutdownTimeout.String() != "15s" || cfg.DrainDelay != 0 {
		t.Errorf("defaults = %+v", cfg)
	}
	if cfg, _ := loadConfig(env("WEB_METRICS_ADDR", "")); cfg.MetricsAddr != "" {
		t.Errorf("WEB_METRICS_ADDR set empty: MetricsAddr = %q, want disabled", cfg.MetricsAddr)
	}
	// Every problem at once, each naming its variable.
	_, err = loadConfig(env("SHUTDOWN_TIMEOUT", "soon", "DRAIN_DELAY", "-1s"))
	if err == nil {
		t.Fatal("bad durations accepted")
	}
	for _, name := range []string{"SHUTDOWN_TIMEOUT", "DRAIN_DELAY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// A configuration with several problems names all of them in one error,
// before anything starts.
func TestConfigReportsEveryProblem(t *testing.T) {
	env := map[string]string{"LOG_LEVEL": "loud", "WEB_ADDR": ":http-alt", "WEB_METRICS_ADDR": "127.0.0.1:70000", "SHUTDOWN_TIMEOUT": "soon"}
	_, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatal("accepted")
	}
	for name := range env {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
