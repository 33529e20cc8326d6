package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/ratelimit"
	"gatehouse.dev/proxy/internal/revoke"
	"gatehouse.dev/proxy/internal/token"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// seen is one request as an upstream received it.
type seen struct {
	Method     string
	RequestURI string
	Path       string
	Header     http.Header
}

// echo is an upstream that records exactly what it receives (Oathkeeper
// style) and answers 200 {"ok":true}, or runs a custom handler.
type echo struct {
	*httptest.Server
	mu     sync.Mutex
	got    []seen
	handle atomic.Pointer[http.HandlerFunc]
}

func newEcho(t testing.TB) *echo {
	t.Helper()
	e := &echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && r.Header.Get("X-Request-Id") == "" {
			w.WriteHeader(http.StatusOK) // the proxy's readiness probe, not a forwarded request
			return
		}
		e.mu.Lock()
		e.got = append(e.got, seen{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, Header: r.Header.Clone()})
		e.mu.Unlock()
		if h := e.handle.Load(); h != nil {
			(*h)(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echo) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

func (e *echo) last(t *testing.T) seen {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) == 0 {
		t.Fatal("upstream received nothing")
	}
	return e.got[len(e.got)-1]
}

func (e *echo) setHandler(h http.HandlerFunc) { e.handle.Store(&h) }

// harness is a proxy wired like run does, in front of echo upstreams, a test
// JWKS, and the shared Redis under a per-test prefix.
type harness struct {
	t        testing.TB
	backend  *echo
	authsvc  *echo
	jwks     *tokentest.JWKS
	keys     map[string]*tokentest.Key
	cfg      config
	m        *metrics
	verifier *token.Verifier
	revoked  *revoke.Follower
	rdb      redis.UniversalClient // the Redis the proxy uses, for tests to write to; nil without Redis
	limiter  *ratelimit.Limiter
	lc       *httpx.Lifecycle
	s        *server
	handler  http.Handler
	// routesPath is PROXY_ROUTES_FILE when harnessOpt.routes was set.
	routesPath string
	srv        *httptest.Server
}

var prefixSeq atomic.Int64

// baseEnv is a valid environment for the harness's upstreams.
func (h *harness) baseEnv(redisAddr string) map[string]string {
	return map[string]string{
		"BACKEND_URL": h.backend.URL, "AUTHSVC_URL": h.authsvc.URL, "JWKS_URL": h.jwks.URL(),
		"JWT_SECRET": string(tokentest.Secret), "JWT_ISSUER": tokentest.Issuer, "JWT_AUDIENCE": tokentest.Audience,
		"REDIS_URL":       "redis://" + redisAddr + "/0",
		"AUTH_RATE_LIMIT": "1000/m", "AUTH_GENERAL_RATE_LIMIT": "1000/m",
		"REDIS_PREFIX": fmt.Sprintf("test:%s:%d:%d:", h.t.Name(), time.Now().UnixNano(), prefixSeq.Add(1)),
	}
}

// envFunc reads m like os.LookupEnv reads the process: a key present with
// "" is "set to empty".
func envFunc(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

type harnessOpt struct {
	env       map[string]string // overrides; "" means set-to-empty
	redisAddr string            // "" means the shared test Redis
	prefix    string            // "" means a fresh per-test prefix
	log       *zap.Logger       // nil means zap.NewNop()
	// routes, when set, returns a routes file (given the harness's
	// upstreams) written to a temporary PROXY_ROUTES_FILE.
	routes func(h *harness) string
	// writeTimeout is the test server's WriteTimeout (0: none), to prove
	// long routes outlive it.
	writeTimeout time.Duration
}

func newHarness(t testing.TB, o harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, backend: newEcho(t), authsvc: newEcho(t), keys: map[string]*tokentest.Key{}}
	var list []*tokentest.Key
	for _, alg := range []string{"EdDSA", "ES256", "RS256", "PS256"} {
		k := tokentest.NewKey(alg, "kid-"+alg)
		h.keys[alg] = k
		list = append(list, k)
	}
	h.keys["HS256"] = tokentest.NewKey("HS256", "")
	h.jwks = tokentest.NewJWKS(t, list...)
	if o.redisAddr == "" {
		o.redisAddr = testenv.RedisAddr(t)
	}
	env := h.baseEnv(o.redisAddr)
	for k, v := range o.env {
		env[k] = v
	}
	if o.routes != nil {
		h.routesPath = filepath.Join(t.TempDir(), "routes.yaml")
		h.writeRoutes(o.routes(h))
		env["PROXY_ROUTES_FILE"] = h.routesPath
	}
	cfg, err := loadConfig(envFunc(env))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h.cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.m = newMetrics()
	h.revoked = h.startFollower(ctx, cfg, h.m)
	h.verifier, err = token.NewVerifier(ctx, token.Config{
		Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL, Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway,
		Revoked: h.revoked.Revoked, CacheSize: cfg.tokenCacheSize(), OnCacheLookup: h.m.sigCacheLookup,
		JWKS: token.JWKSConfig{RefreshInterval: time.Hour, UnknownKIDCooldown: time.Hour,
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, OnFetch: h.m.jwksFetched},
	})
	if err != nil {
		t.Fatal(err)
	}
	var rdb redis.UniversalClient
	if cfg.Redis != nil {
		rdb = ratelimit.NewClient(cfg.Redis, 5*time.Second)
		t.Cleanup(func() { rdb.Close() })
		h.rdb = rdb
	}
	h.limiter = ratelimit.New(rdb)
	h.limiter.Prefix = o.prefix
	if h.limiter.Prefix == "" {
		h.limiter.Prefix = fmt.Sprintf("test:%s:%d:%d:", t.Name(), time.Now().UnixNano(), prefixSeq.Add(1))
	}
	h.limiter.CallTimeout = 5 * time.Second // a busy CI box must not look like a dead Redis
	h.limiter.HealthInterval = 20 * time.Millisecond
	h.limiter.OnBackend = h.m.setBackend
	if rdb != nil {
		prefix := h.limiter.Prefix
		t.Cleanup(func() {
			c := context.Background()
			for it := rdb.Scan(c, 0, "rate:"+prefix+"*", 100).Iterator(); it.Next(c); {
				rdb.Del(c, it.Val())
			}
		})
	}
	go h.limiter.Run(ctx)
	h.lc = &httpx.Lifecycle{}
	log := o.log
	if log == nil {
		log = zap.NewNop()
	}
	h.s = newServer(cfg, deps{log: log, m: h.m, verifier: h.verifier, limiter: h.limiter, revoked: h.revoked, lc: h.lc})
	h.handler = h.s
	h.srv = httptest.NewUnstartedServer(h.handler)
	h.srv.Config.WriteTimeout = o.writeTimeout
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	if cfg.JWKSURL != "" && h.jwks != nil {
		deadline := time.Now().Add(10 * time.Second)
		for !h.verifier.JWKSLoaded() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return h
}

// startFollower starts cfg's revocation follower with test timings (fast
// health checks, no periodic resync, so a test sees reloads caused by
// reconnects only), waits for its first read, and deletes the test's keys at
// the end. It returns nil when REDIS_URL is empty.
func (h *harness) startFollower(ctx context.Context, cfg config, m *metrics) *revoke.Follower {
	t := h.t
	t.Helper()
	f, err := newFollower(cfg, zap.NewNop(), m, revoke.Options{
		HealthEvery: 50 * time.Millisecond, ResyncEvery: time.Hour, PruneEvery: time.Hour, CallTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		opt, _ := redis.ParseURL(cfg.RedisURL)
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		defer dcancel()
		_ = rdb.Del(dctx, wire.RevokedKey(cfg.RevocationPrefix)).Err() // best effort: the Redis may be stopped
	})
	select {
	case <-f.Loaded():
	case <-time.After(10 * time.Second):
		// A test that stops Redis on purpose starts it first; anything else
		// is a broken environment.
		t.Fatal("revocation set never loaded from Redis")
	}
	return f
}

// revoke writes a revocation as authsvc does: ZADD, then PUBLISH.
func (h *harness) revoke(sid string, exp time.Time) {
	h.t.Helper()
	ctx := context.Background()
	p := h.cfg.RevocationPrefix
	if err := h.rdb.ZAdd(ctx, wire.RevokedKey(p), redis.Z{Score: float64(exp.Unix()), Member: sid}).Err(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.rdb.Publish(ctx, wire.RevocationChannel(p), fmt.Sprintf("%s %d", sid, exp.Unix())).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// writeRoutes replaces the routes file's content (atomically, as a
// ConfigMap update does, so a poll never reads half a file).
func (h *harness) writeRoutes(yaml string) {
	h.t.Helper()
	tmp := h.routesPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.routesPath); err != nil {
		h.t.Fatal(err)
	}
}

// token returns a valid token for sub signed with alg.
func (h *harness) token(alg, sub string) string {
	return h.keys[alg].Sign(h.t, tokentest.Claims(sub), nil)
}

// serve runs r through the proxy in process (RemoteAddr and raw header keys
// as the test set them) and returns the response.
func (h *harness) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	return w
}

// rawRequest sends request bytes as they are over TCP (Go's client would
// clean the path) and returns the status code and body.
func rawRequest(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) addr() string { return strings.TrimPrefix(h.srv.URL, "http://") }

// newHarnessWithJWKS builds a second proxy over base's upstreams and JWKS
// without waiting for the JWKS to load.
func newHarnessWithJWKS(t *testing.T, base *harness) *harness {
	t.Helper()
	h := *base
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := base.cfg
	v, err := token.NewVerifier(ctx, token.Config{
		Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL, Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway,
		JWKS: token.JWKSConfig{RefreshInterval: time.Hour, UnknownKIDCooldown: time.Hour,
			RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.verifier = v
	h.m = newMetrics()
	s := newServer(cfg, deps{log: zap.NewNop(), m: h.m, verifier: v, limiter: base.limiter, lc: &httpx.Lifecycle{}})
	h.s, h.handler = s, s
	return &h
}
