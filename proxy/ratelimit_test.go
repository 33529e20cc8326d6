package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/ratelimit"
)

func signIn(h *harness, remote string, xff ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/api/auth/sign-in/email", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return h.serve(r)
}

func TestSignInLimitExactUnderConcurrency(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"AUTH_RATE_LIMIT": "5/h"}})
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := signIn(h, "198.51.100.1:1000")
			switch w.Code {
			case 200:
				ok.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				t.Errorf("status %d", w.Code)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || limited.Load() != 95 || h.authsvc.count() != 5 {
		t.Fatalf("allowed %d, limited %d, authsvc saw %d; want 5, 95, 5", ok.Load(), limited.Load(), h.authsvc.count())
	}
	w := signIn(h, "198.51.100.1:1000")
	hd := w.Header()
	ra, _ := strconv.Atoi(hd.Get("Retry-After"))
	if w.Code != 429 || ra < 1 || hd.Get("X-Retry-After") != hd.Get("Retry-After") ||
		hd.Get("RateLimit-Limit") != "5" || hd.Get("RateLimit-Remaining") != "0" || hd.Get("RateLimit-Reset") == "" {
		t.Errorf("429 headers: %d %v", w.Code, hd)
	}
	if got := testutil.ToFloat64(h.m.rateLimited.WithLabelValues("auth_strict", "redis")); got != 96 {
		t.Errorf("rejections metric = %v, want 96", got)
	}
	// Another client is unaffected; so is the general auth bucket.
	if w := signIn(h, "198.51.100.2:1000"); w.Code != 200 {
		t.Errorf("other IP: %d", w.Code)
	}
	r := httptest.NewRequest("GET", "/api/auth/get-session", nil)
	r.RemoteAddr = "198.51.100.1:1000"
	if w := h.serve(r); w.Code != 200 {
		t.Errorf("general auth route: %d", w.Code)
	}
}

func TestGeneralAuthLimit(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"AUTH_GENERAL_RATE_LIMIT": "2/h"}})
	codes := []int{}
	for range 3 {
		r := httptest.NewRequest("GET", "/api/auth/get-session", nil)
		r.RemoteAddr = "198.51.100.9:1"
		codes = append(codes, h.serve(r).Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("codes %v, want 200 200 429", codes)
	}
	// The protected API is not rate-limited by the auth buckets.
	r := httptest.NewRequest("GET", "/api/v1/todos", nil)
	r.RemoteAddr = "198.51.100.9:1"
	r.Header.Set("Authorization", "Bearer "+h.token("EdDSA", "u"))
	if w := h.serve(r); w.Code != 200 {
		t.Errorf("api: %d", w.Code)
	}
}

func TestLimitHoldsAcrossTwoInstances(t *testing.T) {
	env := map[string]string{"AUTH_RATE_LIMIT": "4/h"}
	a := newHarness(t, harnessOpt{env: env})
	b := newHarness(t, harnessOpt{env: env, prefix: a.limiter.Prefix})
	allowed := 0
	for i := range 10 {
		h := a
		if i%2 == 1 {
			h = b
		}
		if signIn(h, "198.51.100.77:1").Code == 200 {
			allowed++
		}
	}
	if allowed != 4 {
		t.Fatalf("allowed %d across two proxies, want 4", allowed)
	}
}

func TestXFFRotationFromUntrustedPeerGetsNoNewBucket(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"AUTH_RATE_LIMIT": "3/h"}})
	allowed := 0
	for i := range 10 {
		if signIn(h, "203.0.113.5:999", "10.0.0."+strconv.Itoa(i)).Code == 200 {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("allowed %d with rotating X-Forwarded-For, want 3", allowed)
	}
	if got := h.authsvc.last(t).Header.Get("X-Forwarded-For"); got != "203.0.113.5" {
		t.Errorf("authsvc X-Forwarded-For %q, want the peer", got)
	}
}

func TestTrustedProxiesRightMostUntrusted(t *testing.T) {
	h := newHarness(t, harnessOpt{env: map[string]string{"AUTH_RATE_LIMIT": "2/h", "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}})
	// The client rotates the left part; the right-most untrusted entry stays.
	allowed := 0
	for i := range 5 {
		if signIn(h, "10.1.2.3:1", "6.6.6."+strconv.Itoa(i)+", 198.51.100.8, 10.9.9.9").Code == 200 {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("allowed %d, want 2: the bucket is 198.51.100.8", allowed)
	}
	if got := h.authsvc.last(t).Header.Get("X-Forwarded-For"); got != "198.51.100.8" {
		t.Errorf("X-Forwarded-For upstream %q, want 198.51.100.8", got)
	}
	// A different real client behind the same proxy has its own bucket.
	if w := signIn(h, "192.0.2.1:1", "198.51.100.9"); w.Code != 200 {
		t.Errorf("other client: %d", w.Code)
	}
	// IPv6 clients share a bucket per /64.
	n := 0
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"} {
		if signIn(h, "10.1.2.3:1", ip).Code == 200 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("IPv6 /64: allowed %d of 3, want 2", n)
	}
}

func TestRedisDownFallsBackAndReturns(t *testing.T) {
	rd := testenv.NewRedis(t)
	h := newHarness(t, harnessOpt{redisAddr: rd.Addr(), env: map[string]string{"AUTH_RATE_LIMIT": "3/h"}})
	h.limiter.CallTimeout = 500 * time.Millisecond
	if w := signIn(h, "198.51.100.3:1"); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if err := rd.Stop(); err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for range 6 {
		if signIn(h, "198.51.100.3:1").Code == 200 {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("fallback allowed %d of 6, want 3 (fresh in-process bucket)", allowed)
	}
	if h.limiter.Backend() != ratelimit.BackendMemory || testutil.ToFloat64(h.m.limiterBackend.WithLabelValues("memory")) != 1 {
		t.Errorf("backend %s, memory gauge %v", h.limiter.Backend(), testutil.ToFloat64(h.m.limiterBackend.WithLabelValues("memory")))
	}
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.limiter.Backend() != ratelimit.BackendRedis {
		if time.Now().After(deadline) {
			t.Fatal("did not return to Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if testutil.ToFloat64(h.m.limiterBackend.WithLabelValues("redis")) != 1 {
		t.Error("redis gauge not 1 after recovery")
	}
	if w := signIn(h, "198.51.100.3:1"); w.Code != 200 { // restarted Redis is empty
		t.Errorf("after recovery: %d", w.Code)
	}
}
