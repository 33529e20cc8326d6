package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse.dev/kit/gcdefault"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/logging"
	"gatehouse.dev/proxy/internal/ratelimit"
	"gatehouse.dev/proxy/internal/revoke"
	"gatehouse.dev/proxy/internal/token"
)

// run is the whole program; main only calls it, with the process's
// arguments (without the program name), environment, and output. It wires
// the proxy and serves until ctx ends (main cancels it on SIGINT or
// SIGTERM), then drains and shuts down gracefully. The proxy has no
// subcommands and writes nothing to stdout; logs go to stderr.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q (want no arguments)", args[0])
	}
	// Background work (revocation follower, JWKS refresh, limiter health)
	// outlives the signal: requests served during DRAIN_DELAY and shutdown
	// still need current revocations and keys. It stops when run returns.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	cfg, err := loadConfig(lookup)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	// GOGC stays Go's 100: a higher one saved a little CPU at 32
	// connections but raised peak memory at 2,000 above the bare proxy's,
	// the issue 18 target (gatebench -rows hs256-2k,bare-2k -proxy-env GOGC=150).
	memLimit := gcdefault.Apply(lookup, os.ReadFile, 0).MemoryLimit
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

	s := newServer(cfg, deps{log: log, m: m, verifier: verifier, limiter: limiter, revoked: revoked, lc: &httpx.Lifecycle{}})
	if cfg.RoutesFile != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go s.watchRoutes(bg, hup, cfg.RoutesPoll)
	}
	return s.serve(ctx)
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
