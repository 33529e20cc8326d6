package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// started is a run in a goroutine, stopped by cancel.
type started struct {
	cancel context.CancelFunc
	errc   chan error
	logs   *testenv.LogBuffer
}

func startRun(t *testing.T, env map[string]string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{cancel: cancel, errc: make(chan error, 1), logs: &testenv.LogBuffer{}}
	go func() { s.errc <- run(ctx, nil, lookupMap(env), io.Discard, s.logs) }()
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("web logs:\n%s", s.logs.String())
		}
	})
	return s
}

// waitForReady polls url until it answers 200, or fails the test after 5s
// (or at once if run returned).
func (s *started) waitForReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-s.errc:
			t.Fatalf("run returned during start-up: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready after 5s", url)
}

func (s *started) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return 10s after cancel")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// The real wiring: page and metrics served, then on cancel /readyz turns 503
// for DRAIN_DELAY while the page still loads, and run returns nil.
func TestRunDrainsThenStops(t *testing.T) {
	t.Parallel()
	addr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	s := startRun(t, map[string]string{
		"WEB_ADDR": addr, "WEB_METRICS_ADDR": metricsAddr,
		"DRAIN_DELAY": "500ms", "SHUTDOWN_TIMEOUT": "5s",
	})
	base := "http://" + addr
	s.waitForReady(t, base+"/readyz")

	if code, body := get(t, base+"/"); code != 200 || !strings.Contains(body, `id="todo-list"`) {
		t.Fatalf("GET / = %d %.80q", code, body)
	}
	if code, body := get(t, "http://"+metricsAddr+"/metrics"); code != 200 || !strings.Contains(body, `web_http_requests_total{method="GET",route="GET /{$}",status="200"}`) {
		t.Errorf("metrics = %d, missing the request counter for GET /:\n%s", code, body)
	}

	start := time.Now()
	s.cancel()
	sawDraining := false
	for time.Since(start) < 400*time.Millisecond {
		code, body := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "DRAINING") {
			sawDraining = true
			if code, _ := get(t, base+"/"); code != 200 {
				t.Errorf("GET / while draining = %d, want 200 (still serving)", code)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawDraining {
		t.Error("/readyz never answered 503 DRAINING during DRAIN_DELAY")
	}
	s.stop(t)
	if elapsed := time.Since(start); elapsed < 500*time.Millisecond {
		t.Errorf("run returned after %v, before DRAIN_DELAY", elapsed)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still listening after run returned")
	}
	if logs := s.logs.String(); !strings.Contains(logs, `"service":"web"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("logs lack the service field or the stop line:\n%s", logs)
	}
}

// WEB_METRICS_ADDR set to "" means no metrics listener at all.
func TestRunMetricsDisabled(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	s := startRun(t, map[string]string{"WEB_ADDR": addr, "WEB_METRICS_ADDR": ""})
	s.waitForReady(t, "http://"+addr+"/healthz")
	s.stop(t)
	if n := strings.Count(s.logs.String(), `"msg":"listening"`); n != 1 {
		t.Errorf("%d listeners started, want 1 (no metrics):\n%s", n, s.logs.String())
	}
}

func TestRunRefusesToStart(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad duration", nil, map[string]string{"SHUTDOWN_TIMEOUT": "x"}, "SHUTDOWN_TIMEOUT"},
		{"bad log level", nil, map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"unknown command", []string{"serve"}, nil, `unknown command "serve"`},
		{"address in use", nil, map[string]string{"WEB_ADDR": busy.Addr().String(), "WEB_METRICS_ADDR": ""}, "listen " + busy.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Loopback and no metrics unless the row says otherwise, so a
			// regression that gets past validation never binds :8083.
			env := map[string]string{"WEB_ADDR": "127.0.0.1:0", "WEB_METRICS_ADDR": ""}
			for k, v := range tt.env {
				env[k] = v
			}
			err := run(ctx, tt.args, lookupMap(env), io.Discard, &testenv.LogBuffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
