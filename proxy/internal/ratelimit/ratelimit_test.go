package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/redisx"
	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/ratelimit"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var seq atomic.Int64

// redisLimiter returns a limiter on the shared Redis with a per-test prefix
// whose keys are deleted when the test ends (STYLE example 18).
func redisLimiter(t *testing.T, addr string) (*ratelimit.Limiter, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	prefix := fmt.Sprintf("test:%s:%d:%d:", t.Name(), time.Now().UnixNano(), seq.Add(1))
	t.Cleanup(func() {
		ctx := context.Background()
		for it := rdb.Scan(ctx, 0, "rate:"+prefix+"*", 100).Iterator(); it.Next(ctx); {
			rdb.Del(ctx, it.Val())
		}
		rdb.Close()
	})
	l := ratelimit.New(rdb)
	l.Prefix = prefix
	l.CallTimeout = 5 * time.Second // a loaded CI box must not look like a dead Redis
	return l, prefix
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]ratelimit.Limit{
		"10/m": {10, time.Minute}, "100/s": {100, time.Second}, "1000/h": {1000, time.Hour},
		" 5 / min ": {5, time.Minute}, "1/sec": {1, time.Second},
	} {
		got, err := ratelimit.ParseLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10", "10/", "/m", "0/m", "-1/m", "x/m", "10/d", "10/ms", "1.5/m", "10/m/s", "2000000/s"} {
		if _, err := ratelimit.ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q): no error", bad)
		}
	}
}

func TestMemoryGCRA(t *testing.T) {
	m := ratelimit.NewMemory(0)
	lim := ratelimit.Limit{Rate: 3, Period: time.Hour}
	for i := range 3 {
		res := m.Allow("k", lim)
		if !res.Allowed || res.Remaining != 2-i {
			t.Fatalf("request %d: %+v", i+1, res)
		}
	}
	res := m.Allow("k", lim)
	if res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > 20*time.Minute {
		t.Fatalf("4th request: %+v", res)
	}
	if !m.Allow("other", lim).Allowed {
		t.Fatal("other key shares the bucket")
	}
}

func TestMemoryBounded(t *testing.T) {
	m := ratelimit.NewMemory(10)
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour}
	for i := range 100 {
		m.Allow(fmt.Sprint(i), lim)
	}
	if n := m.Len(); n > 10 {
		t.Fatalf("Len = %d, want <= 10", n)
	}
	// A full table still limits a new key: it is stored (an old bucket is
	// forgotten instead), so its second request within the hour is refused.
	if !m.Allow("newcomer", lim).Allowed {
		t.Fatal("newcomer's first request refused")
	}
	if m.Allow("newcomer", lim).Allowed {
		t.Error("newcomer's second request allowed: a full table stopped limiting new keys")
	}
}

// The same Lua script answers for every caller, atomically: of 100
// concurrent requests under a limit of 5, exactly 5 pass.
func TestRedisConcurrentExact(t *testing.T) {
	l, _ := redisLimiter(t, testenv.RedisAddr(t))
	lim := ratelimit.Limit{Rate: 5, Period: time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := l.Allow(context.Background(), "ip", lim)
			if res.Backend != ratelimit.BackendRedis {
				t.Errorf("answered by %s", res.Backend)
			}
			if res.Allowed {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("allowed %d of 100, want exactly 5", n)
	}
}

func TestRedisSharedAcrossInstances(t *testing.T) {
	addr := testenv.RedisAddr(t)
	a, prefix := redisLimiter(t, addr)
	b, _ := redisLimiter(t, addr)
	b.Prefix = prefix // two proxies, one Redis
	lim := ratelimit.Limit{Rate: 4, Period: time.Hour}
	n := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if l.Allow(context.Background(), "ip", lim).Allowed {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("allowed %d across two instances, want 4", n)
	}
}

func TestFallbackAndRecovery(t *testing.T) {
	srv := testenv.NewRedis(t)
	rc, err := redisx.Parse(srv.URL(), redisx.Extra{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := ratelimit.NewClient(rc, 200*time.Millisecond)
	defer rdb.Close()
	l := ratelimit.New(rdb)
	l.Prefix = "fallback:"
	l.CallTimeout = 200 * time.Millisecond
	l.HealthInterval = 20 * time.Millisecond
	var mu sync.Mutex
	var switches []ratelimit.Backend
	l.OnBackend = func(b ratelimit.Backend) { mu.Lock(); switches = append(switches, b); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)

	lim := ratelimit.Limit{Rate: 3, Period: time.Hour}
	if res := l.Allow(ctx, "ip", lim); !res.Allowed || res.Backend != ratelimit.BackendRedis {
		t.Fatalf("before stop: %+v", res)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Redis is gone: the limiter keeps limiting, in process.
	allowed := 0
	for range 6 {
		res := l.Allow(ctx, "ip", lim)
		if res.Backend != ratelimit.BackendMemory {
			t.Fatalf("while down: answered by %s", res.Backend)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("fallback allowed %d of 6, want 3", allowed)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Backend() != ratelimit.BackendRedis {
		if time.Now().After(deadline) {
			t.Fatal("limiter did not return to Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := l.Allow(ctx, "ip", lim); res.Backend != ratelimit.BackendRedis {
		t.Fatalf("after restart: answered by %s", res.Backend)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []ratelimit.Backend{ratelimit.BackendRedis, ratelimit.BackendMemory, ratelimit.BackendRedis}
	if fmt.Sprint(switches) != fmt.Sprint(want) {
		t.Errorf("backend reports %v, want %v", switches, want)
	}
}

func TestAdmitHeaders(t *testing.T) {
	l := ratelimit.New(nil) // memory only
	lim := ratelimit.Limit{Rate: 2, Period: time.Minute}
	var rejected atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if res, ok := l.Admit(w, r, "b", "k", lim); !ok {
			if res.Backend != ratelimit.BackendMemory {
				t.Errorf("rejected by %s, want memory", res.Backend)
			}
			rejected.Add(1)
		}
	})
	var last *httptest.ResponseRecorder
	for i := range 3 {
		last = httptest.NewRecorder()
		h.ServeHTTP(last, httptest.NewRequest("POST", "/api/auth/sign-in/email", nil))
		if i < 2 && last.Code != 200 {
			t.Fatalf("request %d: %d", i+1, last.Code)
		}
	}
	if last.Code != http.StatusTooManyRequests {
		t.Fatalf("3rd: status %d, want 429", last.Code)
	}
	hd := last.Header()
	if hd.Get("Retry-After") == "" || hd.Get("Retry-After") == "0" || hd.Get("X-Retry-After") != hd.Get("Retry-After") {
		t.Errorf("Retry-After %q X-Retry-After %q", hd.Get("Retry-After"), hd.Get("X-Retry-After"))
	}
	if hd.Get("RateLimit-Limit") != "2" || hd.Get("RateLimit-Remaining") != "0" || hd.Get("RateLimit-Reset") == "" {
		t.Errorf("RateLimit headers: %v", hd)
	}
	if ct := hd.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if rejected.Load() != 1 {
		t.Errorf("%d rejections, want 1", rejected.Load())
	}
}
