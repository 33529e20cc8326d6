package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

// runWithRoutes starts run with a routes file holding content and returns
// the public, metrics and verify addresses, the file's path and the logs.
func runWithRoutes(t *testing.T, backend *echo, content string, poll string) (addr, maddr, vaddr, path string, logs *syncBuffer) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "routes.yaml")
	writeFileAtomic(t, path, content)
	addr, maddr, vaddr = testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := map[string]string{
		"PROXY_ADDR": addr, "PROXY_METRICS_ADDR": maddr, "VERIFY_ADDR": vaddr, "BACKEND_URL": backend.URL,
		"AUTHSVC_URL": backend.URL, "JWKS_URL": "", "JWT_SECRET": string(tokentest.Secret), "REDIS_URL": "",
		"PROXY_ROUTES_FILE": path, "ROUTES_POLL_INTERVAL": poll,
	}
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, envFunc(env), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	waitForOK(t, "http://"+addr+"/healthz")
	return addr, maddr, vaddr, path, logs
}

func writeFileAtomic(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func metricLine(t *testing.T, maddr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

func routesFor(backend *echo, prefixes ...string) string {
	s := "upstreams:\n  app: " + backend.URL + "\nroutes:\n"
	for _, p := range prefixes {
		s += "  - prefix: " + p + "\n    upstream: app\n    auth: none\n"
	}
	return s
}

// TestRunReloadsRoutesFileOnChange: the real wiring polls the file, swaps
// in a good one, keeps the old routes when a broken one arrives, logs
// every problem and says so in the metric.
func TestRunReloadsRoutesFileOnChange(t *testing.T) {
	backend := newEcho(t)
	addr, maddr, vaddr, path, logs := runWithRoutes(t, backend, routesFor(backend, "/x/"), "50ms")
	if got := statusOf(t, "http://"+addr+"/a/1"); got != 404 {
		t.Fatalf("/a/ before reload: %d, want 404", got)
	}
	writeFileAtomic(t, path, routesFor(backend, "/x/", "/a/"))
	waitUntil(t, "new route served", func() bool { return statusOf(t, "http://"+addr+"/a/1") == 200 })
	if l := metricLine(t, maddr, "proxy_routes_last_reload_success"); l != "proxy_routes_last_reload_success 1" {
		t.Errorf("metric %q after a good reload", l)
	}

	writeFileAtomic(t, path, "upstreams:\n  app: nope\nroutes:\n  - prefix: /a/\n    upstream: other\n    auth: never\n")
	waitUntil(t, "failed reload reported", func() bool {
		return metricLine(t, maddr, "proxy_routes_last_reload_success") == "proxy_routes_last_reload_success 0"
	})
	for _, want := range []string{"is not a base URL", `unknown upstream \"other\"`, `auth \"never\"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not mention %s", want)
		}
	}
	if got := statusOf(t, "http://"+addr+"/a/1"); got != 200 {
		t.Errorf("/a/ after a broken reload: %d, want 200 (old routes kept)", got)
	}

	// The forward-auth listener is up and judges by the same table.
	req, _ := http.NewRequest("GET", "http://"+vaddr+"/", nil)
	req.Header.Set("X-Forwarded-Uri", "/a/1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("VERIFY_ADDR for /a/1: %d, want 200", resp.StatusCode)
	}
}

// TestRunReloadsRoutesFileOnSIGHUP: with polling effectively off, SIGHUP
// alone reloads the file.
func TestRunReloadsRoutesFileOnSIGHUP(t *testing.T) {
	backend := newEcho(t)
	addr, _, _, path, _ := runWithRoutes(t, backend, routesFor(backend, "/x/"), "1h")
	writeFileAtomic(t, path, routesFor(backend, "/x/", "/hup/"))
	time.Sleep(100 * time.Millisecond)
	if got := statusOf(t, "http://"+addr+"/hup/1"); got != 404 {
		t.Fatalf("/hup/ before SIGHUP: %d, want 404 (nothing reloads it yet)", got)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "route served after SIGHUP", func() bool { return statusOf(t, "http://"+addr+"/hup/1") == 200 })
}
