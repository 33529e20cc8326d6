// Command proxy is Gatehouse's edge: it verifies access tokens, strips and
// sets identity headers, rate-limits the auth routes and forwards to authsvc,
// the backend and (optionally) the web frontend. See proxy/README.md and docs/.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/logging"
	"gatehouse.dev/proxy/internal/ratelimit"
	"gatehouse.dev/proxy/internal/revoke"
	"gatehouse.dev/proxy/internal/token"
)

func main() {
	if err := run(context.Background(), os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "proxy: %v\n", err)
		os.Exit(1)
	}
}

// run wires the proxy and serves until ctx ends or SIGTERM/SIGINT arrives,
// then drains and shuts down gracefully.
func run(ctx context.Context, lookup func(string) (string, bool), stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Background work (revocation follower, JWKS refresh, limiter health)
	// outlives the signal: requests served during DRAIN_DELAY and shutdown
	// still need current revocations and keys. It stops when run returns.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	memLimit := tuneGC(lookup, os.ReadFile)
	cfg, err := loadConfig(lookup)
	if err != nil {
		return err
	}
	log, err := logging.New(stderr, cfg.LogLevel, "proxy")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if memLimit > 0 {
		log.Info("soft memory limit from the container's cgroup", zap.Int64("bytes", memLimit))
	}

	m := newMetrics()
	revoked, err := newFollower(cfg, log, m, revoke.Options{})
	if err != nil {
		return err
	}
	if revoked != nil {
		go revoked.Run(bg)
		// Give the first read a moment so a restarted proxy does not serve
		// tokens signed out minutes ago; never wait long on a dead Redis.
		select {
		case <-revoked.Loaded():
		case <-time.After(cfg.RevocationStartWait):
			log.Warn("revocation: revoked sessions not loaded yet; serving anyway and loading in the background")
		case <-ctx.Done():
		}
	}
	verifier, err := token.NewVerifier(bg, token.Config{
		Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL,
		Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway,
		Revoked: revoked.Revoked, CacheSize: cfg.tokenCacheSize(), OnCacheLookup: m.sigCacheLookup,
		JWKS: token.JWKSConfig{
			RefreshInterval:    token.DefaultRefreshInterval,
			UnknownKIDCooldown: token.DefaultUnknownKIDCooldown,
			OnFetch: func(err error) {
				m.jwksFetched(err)
				if err != nil {
					log.Warn("JWKS fetch failed; keeping the keys we have", zap.Error(err))
				}
			},
		},
	})
	if err != nil {
		return err
	}

	var rdb redis.UniversalClient
	if cfg.Redis != nil {
		rdb = ratelimit.NewClient(cfg.Redis, ratelimit.DefaultCallTimeout)
		defer rdb.Close()
		ratelimit.Warm(ctx, rdb, time.Second)
	} else {
		log.Warn("REDIS_URL is empty: rate limits are per process, and signed-out sessions' tokens stay valid until they expire")
	}
	limiter := ratelimit.New(rdb)
	limiter.Log = log
	limiter.OnBackend = m.setBackend
	go limiter.Run(bg)

	lc := &httpx.Lifecycle{}
	s, err := newServer(cfg, deps{log: log, m: m, verifier: verifier, limiter: limiter, revoked: revoked, lc: lc})
	if err != nil {
		return err
	}
	if cfg.RoutesFile != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go s.watchRoutes(bg, hup, cfg.RoutesPoll)
	}
	srv := httpx.NewServer(cfg.Addr, s)
	srv.ErrorLog = zap.NewStdLog(log)
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
		mux.Handle("GET /metrics", m.Handler())
		if cfg.PProf {
			// Only on the metrics listener, never the public one: profiles
			// reveal internals and cost CPU on demand.
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
			log.Warn("PPROF=1: profiling endpoints on the metrics listener", zap.String("addr", cfg.MetricsAddr))
		}
		metricsSrv = httpx.NewServer(cfg.MetricsAddr, mux)
	}
	log.Info("starting",
		zap.String("backend", cfg.BackendURL.Redacted()), zap.String("authsvc", cfg.AuthsvcURL.Redacted()),
		zap.Bool("web", cfg.WebURL != nil), zap.Bool("jwks", cfg.JWKSURL != ""), zap.Bool("hs256", cfg.JWTSecret != nil),
		zap.Bool("redis", rdb != nil), zap.Stringer("redis_topology", cfg.Redis), zap.Stringer("auth_rate_limit", cfg.AuthRateLimit),
		zap.String("routes_file", cfg.RoutesFile), zap.String("verify_addr", cfg.VerifyAddr))
	return httpx.Serve(ctx, httpx.ServeConfig{
		Log: log, Main: srv, Metrics: metricsSrv, Others: others, Lifecycle: lc,
		DrainDelay: cfg.DrainDelay, ShutdownTimeout: cfg.ShutdownTimeout,
	})
}

// newFollower returns the revoked-session follower for cfg, or nil (which
// revokes nothing) when REDIS_URL is empty. Its Redis client is closed when
// Run returns. opt's Prefix, Log and hooks are filled in here.
func newFollower(cfg config, log *zap.Logger, m *metrics, opt revoke.Options) (*revoke.Follower, error) {
	if cfg.Redis == nil {
		return nil, nil
	}
	rdb := revoke.NewClient(cfg.Redis)
	opt.Prefix = cfg.RevocationPrefix
	opt.Log = log
	opt.OnReload = func(int) { m.revocationReloads.Inc() }
	opt.OnSize = func(n int) { m.revokedSessions.Set(float64(n)) }
	opt.OnSubscription = m.setRevocationUp
	opt.CloseClient = true
	return revoke.New(rdb, opt), nil
}
