package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/clientip"
	"gatehouse.dev/proxy/internal/h1"
	"gatehouse.dev/proxy/internal/pathclass"
	"gatehouse.dev/proxy/internal/ratelimit"
	"gatehouse.dev/proxy/internal/revoke"
	"gatehouse.dev/proxy/internal/token"
)

// server holds the proxy's dependencies; its handlers are built once, and
// again for each routes file loaded.
type server struct {
	cfg         config
	log         *zap.Logger
	m           *metrics
	verifier    *token.Verifier
	limiter     *ratelimit.Limiter
	revoked     *revoke.Follower // nil: no revocation (REDIS_URL empty)
	lc          *httpx.Lifecycle
	cookieNames []string
	routes      map[pathclass.Class]step // built-in routing (no PROXY_ROUTES_FILE)
	verifies    map[pathclass.Class]step // the same classes for the forward-auth listener

	// table is the loaded PROXY_ROUTES_FILE, nil without one.
	table      atomic.Pointer[routeTable]
	reloadMu   sync.Mutex // one reload at a time; guards routesData and transports
	routesData []byte     // the bytes table was built from
	transports map[transportKey]*h1.Transport

	handler, verifyHandler http.Handler
}

// deps are what newServer wires together.
type deps struct {
	log      *zap.Logger
	m        *metrics
	verifier *token.Verifier
	limiter  *ratelimit.Limiter
	revoked  *revoke.Follower // may be nil
	lc       *httpx.Lifecycle
}

// newServer returns the proxy, with the routes file's table when
// PROXY_ROUTES_FILE is set (cfg carries it parsed). Middleware order,
// outside in, on both listeners:
//
//  1. untrustedRequestID: a client's X-Request-Id is used only from a
//     trusted proxy, so log correlation cannot be forged from outside.
//  2. httpx.ObserveWithContext: request ID, access log, panic recovery,
//     metrics, and the request's exchange (withExchange).
//  3. s.dispatch (public) or s.dispatchVerify (VERIFY_ADDR): client IP and
//     origin facts, path check and route (the "route" label), then the
//     route's steps (routes.go, or the routes file's table).
func newServer(cfg config, d deps) *server {
	s := &server{cfg: cfg, log: d.log, m: d.m, verifier: d.verifier, limiter: d.limiter, revoked: d.revoked, lc: d.lc,
		cookieNames: token.CookieNames(cfg.CookiePrefix), transports: map[transportKey]*h1.Transport{}}
	s.routes = s.addRoutes(true)
	s.verifies = s.addRoutes(false)
	if cfg.RoutesFile != "" {
		s.installRoutes(cfg.Routes, cfg.RoutesData)
	}
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = httpx.ObserveWithContext(d.log, d.m.Metrics, withExchange, h)
	s.handler = s.untrustedRequestID(h)
	var v http.Handler = http.HandlerFunc(s.dispatchVerify)
	v = httpx.ObserveWithContext(d.log, d.m.Metrics, withExchange, v)
	s.verifyHandler = s.untrustedRequestID(v)
	return s
}

// serve runs the public listener, the forward-auth one (VERIFY_ADDR) and
// the metrics one (with pprof when PPROF=1) until ctx ends, then drains:
// /readyz turns 503 for DRAIN_DELAY, and in-flight requests get
// SHUTDOWN_TIMEOUT.
func (s *server) serve(ctx context.Context) error {
	cfg := s.cfg
	srv := httpx.NewServer(cfg.Addr, s)
	srv.ErrorLog = zap.NewStdLog(s.log)
	// A response may stream for a while after its headers: never cut it
	// before the upstream had its full UPSTREAM_TIMEOUT. Routes with a
	// longer timeout in PROXY_ROUTES_FILE extend their own deadlines.
	srv.WriteTimeout = max(srv.WriteTimeout, cfg.UpstreamTimeout+time.Minute)
	var others []*http.Server
	if cfg.VerifyAddr != "" {
		vs := httpx.NewServer(cfg.VerifyAddr, s.verifyHandler)
		vs.ErrorLog = srv.ErrorLog
		others = append(others, vs)
	}
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.m.Handler())
		if cfg.PProf {
			// Only on the metrics listener, never the public one: profiles
			// reveal internals and cost CPU on demand.
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
			s.log.Warn("PPROF=1: profiling endpoints on the metrics listener", zap.String("addr", cfg.MetricsAddr))
		}
		metricsSrv = httpx.NewServer(cfg.MetricsAddr, mux)
	}
	s.log.Info("starting",
		zap.String("backend", cfg.BackendURL.Redacted()), zap.String("authsvc", cfg.AuthsvcURL.Redacted()),
		zap.Bool("web", cfg.WebURL != nil), zap.Bool("jwks", cfg.JWKSURL != ""), zap.Bool("hs256", cfg.JWTSecret != nil),
		zap.Bool("redis", cfg.Redis != nil), zap.Stringer("redis_topology", cfg.Redis), zap.Stringer("auth_rate_limit", cfg.AuthRateLimit),
		zap.String("routes_file", cfg.RoutesFile), zap.String("verify_addr", cfg.VerifyAddr))
	return httpx.Serve(ctx, httpx.ServeConfig{
		Log: s.log, Main: srv, Metrics: metricsSrv, Others: others, Lifecycle: s.lc,
		DrainDelay: cfg.DrainDelay, ShutdownTimeout: cfg.ShutdownTimeout,
	})
}

// ServeHTTP serves the public listener.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// requestInfo works out the client address and the request's own origin.
// X-Forwarded-Proto and X-Forwarded-Host are believed only from a trusted
// proxy; their first element is the one the outermost proxy saw.
func (s *server) requestInfo(r *http.Request) reqInfo {
	ip, trusted := s.cfg.TrustedProxies.ClientIP(r.RemoteAddr, r.Header)
	i := reqInfo{clientIP: ip, scheme: "http", host: r.Host}
	if r.TLS != nil {
		i.scheme = "https"
	}
	if trusted {
		if p := firstElem(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			i.scheme = p
		}
		if h := firstElem(r.Header.Get("X-Forwarded-Host")); h != "" {
			i.host = h
		}
	}
	return i
}

// addrString formats a netip.Addr held elsewhere, for zap.Stringer.
type addrString netip.Addr

func (a *addrString) String() string { return (*netip.Addr)(a).String() }

func firstElem(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.ToLower(strings.TrimSpace(first))
}

func (s *server) untrustedRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.TrustedProxies.Trusted(clientip.Peer(r.RemoteAddr)) {
			r.Header.Del(httpx.HeaderRequestID)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) dispatch(w http.ResponseWriter, r *http.Request) {
	s.route(w, r, true)
}

// route sends r to its route's steps: the forwarding ones, or (forward
// false, the forward-auth listener) the ones that only answer the verdict.
// It is where the request's exchange is taken from the context, once.
func (s *server) route(w http.ResponseWriter, r *http.Request, forward bool) {
	x := exchangeFrom(r.Context())
	x.ResponseWriter, x.info = w, s.requestInfo(r)
	var h step
	var label string
	if t := s.table.Load(); t != nil {
		h, label = s.tableRoute(t, x, r, forward)
	} else {
		class := pathclass.Of(r.URL, s.cfg.WebURL != nil)
		label = string(class)
		if forward {
			h = s.routes[class]
		} else {
			h = s.verifies[class]
		}
	}
	// The class (or the routes file's prefix) is the proxy's route, for
	// the access log and the metrics' "route" label. The address is passed
	// by pointer into x (already on the heap), so the field costs no
	// allocation and is formatted only if logged.
	httpx.SetRoute(r.Context(), label)
	httpx.AddLogFields(r.Context(), zap.String("route_class", label), zap.Stringer("client_ip", (*addrString)(&x.info.clientIP)))
	h(x, r)
}

// tableRoute picks r's handler from a routes file's table: the proxy's own
// answers (bad path, health, CORS preflight) first, then the longest
// matching prefix of the raw path, which passed the same path checks as
// the built-in routing.
func (s *server) tableRoute(t *routeTable, x *exchange, r *http.Request, forward bool) (step, string) {
	if pathclass.Check(r.URL) != nil {
		return s.routes[pathclass.BadPath], string(pathclass.BadPath)
	}
	// The proxy's own health, on its public listener only: on the
	// forward-auth listener these are the application's paths, judged by
	// the table like any other.
	switch {
	case forward && r.URL.Path == "/healthz":
		return s.routes[pathclass.Healthz], string(pathclass.Healthz)
	case forward && r.URL.Path == "/readyz":
		return s.routes[pathclass.Readyz], string(pathclass.Readyz)
	}
	x.table = t
	if t.cors != nil && isPreflight(r) {
		if forward {
			return t.preflight, "cors_preflight"
		}
		return t.preflightVerify, "cors_preflight"
	}
	rt := t.lookup(r.URL.EscapedPath())
	if rt == nil {
		return s.routes[pathclass.NotFound], string(pathclass.NotFound)
	}
	if t.cors != nil {
		corsHeaders(t.cors, x, r)
	}
	if forward {
		return rt.proxy, rt.label
	}
	return rt.verify, rt.label
}

// readyCheck: not ready until a verification key is available; ready only
// while the backend answers. Redis is not checked: the limiter falls back.
func (s *server) readyCheck(backend *http.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		if !s.verifier.KeysReady() {
			return errNoKeys
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.BackendURL.String()+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := backend.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return errBackendUnhealthy
		}
		return nil
	}
}
