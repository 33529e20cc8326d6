package main

import (
	"time"

	"gatehouse.dev/kit/envconf"
	"gatehouse.dev/kit/redisx"
)

// config is everything the backend reads from its environment.
type config struct {
	Addr        string
	MetricsAddr string // empty: no metrics listener
	DatabaseURL string
	LogLevel    string
	MaxDBConns  int
	// PreparedStatements: the per-request statements are prepared once per
	// connection until a pooler shows it cannot keep them (pgdb.Hot).
	PreparedStatements bool
	RequestTimeout     time.Duration // per-request bound on database work
	DrainDelay         time.Duration
	ShutdownTimeout    time.Duration
	// RedisURL ("" = off) is where authsvc's account events arrive
	// (events.go): without it, deleted users' todos stay.
	RedisURL    string
	RedisPrefix string
	Redis       *redisx.Config // RedisURL parsed (one server, TLS, Sentinel or Cluster); nil when off
}

// loadConfig reads and checks the whole environment (addresses, LOG_LEVEL,
// URLs, REDIS_CA_FILE's certificates) and reports every problem at once, so
// run starts nothing on a configuration it would refuse later.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	e := envconf.FromLookup(lookup)
	cfg := config{
		Addr:               e.Addr("BACKEND_ADDR", "127.0.0.1:8081"),
		MetricsAddr:        e.DisableableAddr("BACKEND_METRICS_ADDR", ":9091"),
		DatabaseURL:        e.URL("DATABASE_URL", "", "postgres", "postgresql"),
		LogLevel:           e.LogLevel("LOG_LEVEL", "info"),
		MaxDBConns:         e.Int("DB_MAX_CONNS", 20, 1, 1000),
		PreparedStatements: e.OneOf("DB_PREPARED_STATEMENTS", "auto", "auto", "off") == "auto",
		RequestTimeout:     e.Duration("REQUEST_TIMEOUT", 5*time.Second),
		DrainDelay:         e.NonNegDuration("DRAIN_DELAY", 0),
		ShutdownTimeout:    e.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		RedisURL:           e.Str("REDIS_URL", ""),
		RedisPrefix:        e.Str("REDIS_PREFIX", "gatehouse:"),
	}
	if cfg.RedisURL != "" {
		cfg.Redis = redisx.FromEnv(e, cfg.RedisURL, "") // the proxy's and authsvc's forms
	}
	if cfg.DatabaseURL == "" {
		if _, ok := e.Lookup("DATABASE_URL"); !ok {
			e.Fail("DATABASE_URL", "required but not set: want postgres://user:password@host:5432/db")
		}
	}
	return cfg, e.Err()
}
