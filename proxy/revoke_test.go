package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

// tokenWithSID signs a valid token for sub in session sid.
func (h *harness) tokenWithSID(alg, sub, sid string) string {
	c := tokentest.Claims(sub)
	c["sid"] = sid
	return h.keys[alg].Sign(h.t, c, nil)
}

// get sends GET /api/v1/todos with raw as the bearer token.
func (h *harness) get(raw string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.RemoteAddr = "198.51.100.23:5555"
	r.Header.Set("Authorization", "Bearer "+raw)
	return h.serve(r)
}

// eventually polls cond until it holds or the (generous) bound passes. It
// asserts an upper bound only: how soon is for benchmarks, not tests.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

func assertRevokedResponse(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), `"INVALID_TOKEN"`) {
		t.Errorf("body %s, want code INVALID_TOKEN", w.Body)
	}
	if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\"", got)
	}
}

func TestRevocationPublishedIsRejected(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	for _, alg := range []string{"EdDSA", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			gone := h.tokenWithSID(alg, "u1", "sid-gone-"+alg)
			other := h.tokenWithSID(alg, "u1", "sid-kept-"+alg)
			if w := h.get(gone); w.Code != 200 {
				t.Fatalf("before revocation: status %d: %s", w.Code, w.Body)
			}
			h.revoke("sid-gone-"+alg, time.Now().Add(16*time.Minute))
			eventually(t, "revoked token refused", func() bool { return h.get(gone).Code == http.StatusUnauthorized })
			assertRevokedResponse(t, h.get(gone))
			if w := h.get(other); w.Code != 200 {
				t.Errorf("token of another session: status %d, want 200: %s", w.Code, w.Body)
			}
		})
	}
	if got := testutil.ToFloat64(h.m.authFailures.WithLabelValues("revoked")); got < 2 {
		t.Errorf("auth_failures_total{reason=revoked} = %v, want >= 2", got)
	}
	if got := testutil.ToFloat64(h.m.revokedSessions); got != 2 {
		t.Errorf("revoked_sessions = %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.revocationUp); got != 1 {
		t.Errorf("revocation_subscription_up = %v, want 1", got)
	}
}

func TestTokenWithoutSIDIsUnaffected(t *testing.T) {
	h := newHarness(t, harnessOpt{})
	c := tokentest.Claims("u-nosid")
	delete(c, "sid")
	raw := h.keys["HS256"].Sign(t, c, nil)
	h.revoke("", time.Now().Add(time.Hour)) // an empty member must not revoke sid-less tokens
	h.revoke("s1", time.Now().Add(time.Hour))
	eventually(t, "s1 revoked", func() bool { return h.revoked.Revoked("s1") })
	if w := h.get(raw); w.Code != 200 {
		t.Errorf("token without sid: status %d, want 200: %s", w.Code, w.Body)
	}
}

func TestRevocationPresentAtStartIsRejected(t *testing.T) {
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	ctx := context.Background()
	exp := float64(time.Now().Add(10 * time.Minute).Unix())
	past := float64(time.Now().Add(-time.Minute).Unix())
	if err := rdb.ZAdd(ctx, wire.RevokedKey(prefix), redis.Z{Score: exp, Member: "sid-old"}, redis.Z{Score: past, Member: "sid-stale"}).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), wire.RevokedKey(prefix)) })

	h := newHarness(t, harnessOpt{env: map[string]string{"REDIS_PREFIX": prefix}})
	// newHarness returns once the first read is done: no polling here.
	assertRevokedResponse(t, h.get(h.tokenWithSID("EdDSA", "u1", "sid-old")))
	if w := h.get(h.tokenWithSID("EdDSA", "u1", "sid-stale")); w.Code != 200 {
		t.Errorf("sid whose revocation expired: status %d, want 200", w.Code)
	}
	if n := h.revoked.Len(); n != 1 {
		t.Errorf("held %d revoked sessions, want 1 (the stale one is not loaded)", n)
	}
}

func TestRevocationTwoProxiesBothReject(t *testing.T) {
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	a := newHarness(t, harnessOpt{env: map[string]string{"REDIS_PREFIX": prefix}})
	b := newHarness(t, harnessOpt{env: map[string]string{"REDIS_PREFIX": prefix}})
	ta, tb := a.tokenWithSID("HS256", "u1", "sid-both"), b.tokenWithSID("HS256", "u1", "sid-both")
	a.revoke("sid-both", time.Now().Add(16*time.Minute))
	eventually(t, "proxy a rejects", func() bool { return a.get(ta).Code == http.StatusUnauthorized })
	eventually(t, "proxy b rejects", func() bool { return b.get(tb).Code == http.StatusUnauthorized })
	assertRevokedResponse(t, b.get(tb))
}

// TestRevocationSurvivesRedisOutage: while Redis is down the last known set
// stays in force; a revocation written straight into the sorted set after
// Redis is back (authsvc's retry, whose PUBLISH nobody heard) is picked up by
// the reload that follows the resubscription.
func TestRevocationSurvivesRedisOutage(t *testing.T) {
	rd := testenv.NewRedis(t)
	g := newGate(t, rd.Addr())
	h := newHarness(t, harnessOpt{redisAddr: g.addr()})
	before := h.tokenWithSID("EdDSA", "u1", "sid-before")
	during := h.tokenWithSID("EdDSA", "u1", "sid-during")
	h.revoke("sid-before", time.Now().Add(16*time.Minute))
	eventually(t, "sid-before revoked", func() bool { return h.get(before).Code == http.StatusUnauthorized })
	reloads := testutil.ToFloat64(h.m.revocationReloads)

	// Redis goes away. The gate stays shut after Redis is back, so the
	// direct write below lands before the proxy can reconnect: the only way
	// the proxy can learn it is the reload.
	g.setOpen(false)
	if err := rd.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "subscription reported down", func() bool { return testutil.ToFloat64(h.m.revocationUp) == 0 })
	assertRevokedResponse(t, h.get(before)) // last known set still in force
	if w := h.get(during); w.Code != 200 {
		t.Fatalf("token of a live session during the outage: status %d", w.Code)
	}

	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer direct.Close()
	// The restarted Redis is empty (no persistence); authsvc's retry writes
	// the revocation again, and its PUBLISH reaches no proxy yet.
	exp := time.Now().Add(16 * time.Minute).Unix()
	if err := direct.ZAdd(context.Background(), wire.RevokedKey(h.cfg.RevocationPrefix), redis.Z{Score: float64(exp), Member: "sid-during"}).Err(); err != nil {
		t.Fatal(err)
	}
	g.setOpen(true)
	eventually(t, "sid-during refused after reconnect", func() bool { return h.get(during).Code == http.StatusUnauthorized })
	assertRevokedResponse(t, h.get(during))
	assertRevokedResponse(t, h.get(before)) // memory kept it although the new Redis never had it
	eventually(t, "subscription up again", func() bool { return testutil.ToFloat64(h.m.revocationUp) == 1 })
	if got := testutil.ToFloat64(h.m.revocationReloads); got <= reloads {
		t.Errorf("revocation_reloads_total = %v, want more than %v", got, reloads)
	}
}

// gate is a TCP forwarder to Redis that a test can shut: while shut it
// refuses new connections and cuts existing ones, like a partition.
type gate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   bool
	conns  map[net.Conn]bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, open: true, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); g.setOpen(false) })
	go g.serve()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	if !open {
		for c := range g.conns {
			c.Close()
		}
		clear(g.conns)
	}
}

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.forward(c)
	}
}

func (g *gate) forward(c net.Conn) {
	g.mu.Lock()
	if !g.open {
		g.mu.Unlock()
		c.Close()
		return
	}
	g.mu.Unlock()
	up, err := net.DialTimeout("tcp", g.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	g.mu.Lock()
	if !g.open {
		g.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	g.conns[c], g.conns[up] = true, true
	g.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}
