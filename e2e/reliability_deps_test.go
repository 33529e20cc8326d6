package e2e

// Redis going away and coming back, and a backend too slow to answer: what
// the proxy does, what its metrics say, and what it holds on to meanwhile.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse.dev/kit/testenv"
)

// Redis stops and starts again: the proxy keeps limiting with its in-process
// limiter, keeps the revoked set it knows, and returns to Redis (and reloads
// the set) once it is back; its metrics show each step; nothing crashes and
// valid tokens are served throughout.
func TestReliabilityRedisOutage(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	metricsAddr := testenv.FreeAddr(t)
	s := StartStack(t, Options{SharedRedisURL: rd.URL(), AuthRateLimit: "30/m",
		ProxyEnv: []string{"PROXY_METRICS_ADDR=" + metricsAddr}})
	c := httpClient(15*time.Second, 4)
	bearer := signedUpBearer(t, s, "redis@example.com")

	// signedOut returns a token whose session was then signed out; revokeLater
	// signs the session out when called.
	session := func(email string) (tok string, signOut func()) {
		u := s.NewUser(t)
		u.SignUp(email, pw)
		return u.Token(), func() {
			if r := u.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
				t.Errorf("sign-out %s: %s", email, r)
			}
		}
	}
	refused := func(tok string) bool {
		r, err := call(c, "GET", s.URL+"/api/v1/todos", tok, "")
		return err == nil && r.Status == http.StatusUnauthorized
	}
	before, signOutBefore := session("before@example.com")
	during, signOutDuring := session("during@example.com")
	signOutBefore()
	if _, ok := pollUntil(5*time.Second, 50*time.Millisecond, func() bool { return refused(before) }); !ok {
		t.Fatalf("token of a signed-out session still accepted with Redis up")
	}

	m := func(series string) float64 { return metric(t, metricsAddr, series) }
	const (
		onRedis   = `proxy_rate_limit_backend{backend="redis"}`
		onMemory  = `proxy_rate_limit_backend{backend="memory"}`
		subUp     = `proxy_revocation_subscription_up`
		reloads   = `proxy_revocation_reloads_total`
		revokedN  = `proxy_revoked_sessions`
		goroutine = `go_goroutines`
	)
	// The limiter falls back to memory whenever one Redis call times out,
	// which a loaded machine can cause at start-up (seen in the 20-run
	// series, load average 30); it returns within a health-check period.
	// The outage starts only once the proxy is on Redis.
	if _, ok := pollUntil(10*time.Second, 50*time.Millisecond, func() bool {
		return m(onRedis) == 1 && m(subUp) == 1 && m(revokedN) >= 1
	}); !ok {
		t.Errorf("before the outage: want the Redis limiter, a live subscription and the revoked session counted")
	}
	reloads0 := m(reloads)
	t.Logf("Redis up: redis=%v memory=%v subscription_up=%v revoked=%v reloads=%v goroutines=%v",
		m(onRedis), m(onMemory), m(subUp), m(revokedN), reloads0, m(goroutine))

	if err := rd.Stop(); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	// The limiter notices on use: sign-in attempts (wrong password, so no
	// session) drive it, and must be limited in memory before long.
	var limited, attempts int
	for attempts = 1; attempts <= 45 && limited == 0; attempts++ {
		r, err := call(c, "POST", s.URL+"/api/auth/sign-in/email", "", fmt.Sprintf(`{"email":"x%d@example.com","password":"wrong password"}`, attempts), "Origin", s.URL)
		switch {
		case err != nil || r.Status >= 500:
			t.Errorf("sign-in attempt %d with Redis down = %v %s", attempts, err, r)
		case r.Status == http.StatusTooManyRequests:
			limited = attempts
			if r.Code() != "RATE_LIMITED" || r.Header.Get("Retry-After") == "" {
				t.Errorf("429 with Redis down = %s Retry-After %q", r, r.Header.Get("Retry-After"))
			}
		}
	}
	if limited == 0 {
		t.Errorf("no 429 in %d sign-in attempts with Redis down and AUTH_RATE_LIMIT=30/m: the fallback limiter does not limit", attempts-1)
	}
	d, ok := pollUntil(15*time.Second, 100*time.Millisecond, func() bool { return m(onMemory) == 1 && m(subUp) == 0 })
	t.Logf("Redis down: first 429 at attempt %d; metrics showed memory limiter and subscription down %v after the stop (polled)", limited, (time.Since(downAt)).Round(time.Millisecond))
	if !ok {
		t.Errorf("after %v with Redis down: memory=%v subscription_up=%v, want 1 and 0", d, m(onMemory), m(subUp))
	}
	for i := 0; i < 20; i++ {
		if r, err := call(c, "GET", s.URL+"/api/v1/todos", bearer, ""); err != nil || r.Status != http.StatusOK {
			t.Errorf("valid token with Redis down = %v %s, want 200", err, r)
		}
	}
	if !refused(before) {
		t.Errorf("a session revoked before the outage is accepted while Redis is down: the last known set must be kept")
	}
	signOutDuring() // authsvc cannot publish it now: it queues and retries

	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	backAt := time.Now()
	d, ok = pollUntil(20*time.Second, 100*time.Millisecond, func() bool {
		// a request drives the limiter back to Redis, as real traffic would
		_, _ = call(c, "GET", s.URL+"/api/auth/ok", "", "")
		return m(onRedis) == 1 && m(subUp) == 1 && m(reloads) > reloads0
	})
	t.Logf("Redis back: limiter on Redis, subscription up and set reloaded after %v (reloads %v → %v)", d.Round(time.Millisecond), reloads0, m(reloads))
	if !ok {
		t.Errorf("20s after Redis came back: redis=%v subscription_up=%v reloads=%v (was %v)", m(onRedis), m(subUp), m(reloads), reloads0)
	}
	d, ok = pollUntil(20*time.Second, 100*time.Millisecond, func() bool { return refused(during) })
	t.Logf("session signed out during the outage refused %v after Redis was back", time.Since(backAt).Round(time.Millisecond))
	if !ok {
		t.Errorf("token of a session signed out during the Redis outage still accepted %v after Redis came back", d)
	}
	if !refused(before) {
		t.Errorf("a session revoked before the outage is accepted after Redis came back (empty) again")
	}
	if r, err := call(c, "GET", s.URL+"/api/v1/todos", bearer, ""); err != nil || r.Status != http.StatusOK {
		t.Errorf("valid token after Redis came back = %v %s", err, r)
	}
	for _, p := range []*Proc{s.Auth, s.Backend, s.Proxy} {
		if !p.Alive() {
			t.Errorf("%s exited", p.Name)
		}
	}
	t.Logf("after: redis=%v memory=%v subscription_up=%v revoked=%v reloads=%v goroutines=%v",
		m(onRedis), m(onMemory), m(subUp), m(revokedN), m(reloads), m(goroutine))
}

// A backend stalled on a table lock: the proxy answers 504 GATEWAY_TIMEOUT at
// its UPSTREAM_TIMEOUT, and once the slow requests are over its goroutines
// and sockets are back near where they started.
func TestReliabilitySlowBackend(t *testing.T) {
	t.Parallel()
	metricsAddr := testenv.FreeAddr(t)
	s := StartStack(t, Options{
		ProxyEnv:   []string{"PROXY_METRICS_ADDR=" + metricsAddr, "UPSTREAM_TIMEOUT=1s"},
		BackendEnv: []string{"REQUEST_TIMEOUT=10s"},
	})
	bearer := signedUpBearer(t, s, "slow@example.com")
	const concurrent = 40
	c := httpClient(15*time.Second, concurrent)

	measure := func() (goroutines float64, sockets int) {
		c.CloseIdleConnections()
		return metric(t, metricsAddr, "go_goroutines"), socketCount(s.Proxy.Pid())
	}
	for i := 0; i < concurrent; i++ { // warm the pools the slow requests will use
		_, _ = call(c, "GET", s.URL+"/api/v1/todos", bearer, "")
	}
	time.Sleep(200 * time.Millisecond)
	g0, s0 := measure()

	ctx := ctxT(t, time.Minute)
	conn, err := pgx.Connect(ctx, s.BackendDBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE todos IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			_ = tx.Rollback(context.Background())
		}
	}()

	var gPeak float64
	var sPeak, badConn503 int
	for wave := 0; wave < 3; wave++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var fastest, slowest time.Duration = time.Hour, 0
		for i := 0; i < concurrent; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				method, body := "GET", ""
				if i%2 == 1 {
					method, body = "POST", `{"title":"slow"}`
				}
				start := time.Now()
				r, err := call(c, method, s.URL+"/api/v1/todos", bearer, body)
				d := time.Since(start)
				mu.Lock()
				fastest, slowest = min(fastest, d), max(slowest, d)
				mu.Unlock()
				switch {
				case err == nil && r.Status == http.StatusGatewayTimeout && r.Code() == "GATEWAY_TIMEOUT":
				case err == nil && r.Status == http.StatusServiceUnavailable && r.Code() == "UNAVAILABLE":
					// Finding (see the report): with more waiting requests than
					// DB_MAX_CONNS, a request may be handed a pooled connection
					// that is already broken ("driver: bad connection", after
					// other requests' queries were cancelled); the backend
					// answers 503 (it answered a logged 500 before) just before
					// the proxy's deadline.
					mu.Lock()
					badConn503++
					mu.Unlock()
				default:
					t.Errorf("%s with the backend stalled = %v %s, want 504 GATEWAY_TIMEOUT", method, err, r)
				}
				// UPSTREAM_TIMEOUT=1s: not before it, and not hung past it.
				if d < 900*time.Millisecond || d > 5*time.Second {
					t.Errorf("504 after %v, want about the 1s UPSTREAM_TIMEOUT", d)
				}
			}(i)
		}
		// Mid-wave: what the proxy holds while requests wait on the backend.
		time.Sleep(500 * time.Millisecond)
		g, sk := metric(t, metricsAddr, "go_goroutines"), socketCount(s.Proxy.Pid())
		gPeak, sPeak = max(gPeak, g), max(sPeak, sk)
		wg.Wait()
		t.Logf("wave %d: %d requests, 504 after %v..%v; mid-wave proxy goroutines %v, sockets %d", wave+1, concurrent,
			fastest.Round(time.Millisecond), slowest.Round(time.Millisecond), g, sk)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	locked = false

	// After: back near the baseline (slack for timers and the metrics scrape).
	var g1 float64
	var s1 int
	_, ok := pollUntil(10*time.Second, 200*time.Millisecond, func() bool {
		g1, s1 = measure()
		return g1 <= g0+10 && s1 <= s0+5
	})
	t.Logf("%d of %d slow requests were a backend 503 (broken pooled connection) instead of a 504", badConn503, 3*concurrent)
	t.Logf("proxy goroutines %v before, %v peak, %v after; sockets %d before, %d peak, %d after", g0, gPeak, g1, s0, sPeak, s1)
	if !ok {
		t.Errorf("proxy did not return to baseline after the slow requests: goroutines %v → %v, sockets %d → %d", g0, g1, s0, s1)
	}
	if r, err := call(c, "GET", s.URL+"/api/v1/todos", bearer, ""); err != nil || r.Status != http.StatusOK {
		t.Errorf("GET after the lock was released = %v %s", err, r)
	}
}
