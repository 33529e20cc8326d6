package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

func waitForOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// syncBuffer is a log sink safe for the proxy's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunServesAndDrains drives the real wiring: env in, a request through,
// metrics out, and a SIGTERM-equivalent cancel that lets an in-flight request
// finish.
func TestRunServesAndDrains(t *testing.T) {
	backend := newEcho(t)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	backend.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/slow" {
			once.Do(func() { close(started) })
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})
	addr, maddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := map[string]string{
		"PROXY_ADDR": addr, "PROXY_METRICS_ADDR": maddr, "BACKEND_URL": backend.URL,
		"AUTHSVC_URL": backend.URL, "JWKS_URL": "", "JWT_SECRET": string(tokentest.Secret),
		"REDIS_URL": "redis://" + testenv.RedisAddr(t) + "/0", "SHUTDOWN_TIMEOUT": "10s",
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, envFunc(env), io.Discard, logs) }()
	waitForOK(t, "http://"+addr+"/readyz")

	tok := tokentest.NewKey("HS256", "").Sign(t, tokentest.Claims("run-user"), nil)
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/todos", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || backend.last(t).Header.Get("X-User-Id") != "run-user" {
		t.Fatalf("status %d, X-User-Id %q", resp.StatusCode, backend.last(t).Header.Get("X-User-Id"))
	}
	mresp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`proxy_http_requests_total{method="GET",route="api",status="200"}`, `proxy_rate_limit_backend{backend="redis"} 1`, "proxy_upstream_duration_seconds_bucket"} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// In flight across shutdown.
	slow, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/slow", nil)
	slow.Header.Set("Authorization", "Bearer "+tok)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(slow)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{body: string(b)}
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond) // let shutdown begin; correctness does not depend on it
	close(release)
	if r := <-done; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("a log line contains the token")
	}
	if !strings.Contains(logs.String(), `"user_id":"run-user"`) {
		t.Error("access log lacks user_id")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	err := run(context.Background(), nil, envFunc(map[string]string{"JWKS_URL": "", "JWT_SECRET": ""}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "JWKS_URL") {
		t.Fatalf("err = %v", err)
	}
}

// TestRunPProfOnMetricsListenerOnly: PPROF=1 mounts the profiler on the
// metrics listener; the public listener never serves it. Without PPROF the
// metrics listener does not either.
func TestRunPProfOnMetricsListenerOnly(t *testing.T) {
	backend := newEcho(t)
	for _, on := range []bool{true, false} {
		addr, maddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
		env := map[string]string{
			"PROXY_ADDR": addr, "PROXY_METRICS_ADDR": maddr, "BACKEND_URL": backend.URL,
			"AUTHSVC_URL": backend.URL, "JWKS_URL": "", "JWT_SECRET": string(tokentest.Secret), "REDIS_URL": "",
		}
		if on {
			env["PPROF"] = "1"
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- run(ctx, nil, envFunc(env), io.Discard, io.Discard) }()
		waitForOK(t, "http://"+addr+"/healthz")
		status := func(url string) int {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := status("http://" + addr + "/debug/pprof/"); got != http.StatusNotFound {
			t.Errorf("PPROF=%v: public /debug/pprof/ answered %d, want 404", on, got)
		}
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if got := status("http://" + maddr + "/debug/pprof/"); got != want {
			t.Errorf("PPROF=%v: metrics /debug/pprof/ answered %d, want %d", on, got, want)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("run: %v", err)
		}
	}
}
