package httpx

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/testenv"
)

// startServe runs Serve with a short drain and shutdown timeout and returns
// its address, the cancel that stands for SIGTERM, and Serve's result.
func startServe(t *testing.T, h http.Handler, drain, timeout time.Duration) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, ServeConfig{Log: zap.NewNop(), Main: NewServer(addr, h), DrainDelay: drain, ShutdownTimeout: timeout})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server on %s never listened: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr, cancel, errc
}

// A connection that was accepted but never sent a byte (a client pool's
// spare) must not hold shutdown: net/http alone waits 5 s for it, longer
// than the 3 s timeout here, and Serve returned "context deadline exceeded"
// (issue 12, TestReliabilityRollingRestart).
func TestShutdownDoesNotWaitForSilentConnections(t *testing.T) {
	const drain = 200 * time.Millisecond
	addr, cancel, errc := startServe(t, Healthz(), drain, 3*time.Second)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // accepted by the server
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v after %v, want nil", err, time.Since(start))
		}
		if took := time.Since(start); took > drain+time.Second {
			t.Errorf("shutdown took %v with a silent connection open, want under drain delay + 1s (%v)", took, drain+time.Second)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of cancel")
	}
	// The silent connection was closed by the server.
	_ = silent.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("silent connection still open after shutdown")
	}
}
