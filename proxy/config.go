package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/kit/envconf"
	"gatehouse.dev/kit/redisx"
	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/clientip"
	"gatehouse.dev/proxy/internal/ratelimit"
)

// config is the proxy's configuration, read once from the environment.
type config struct {
	LogLevel    string
	Addr        string // PROXY_ADDR
	MetricsAddr string // PROXY_METRICS_ADDR; "" disables
	PProf       bool   // PPROF=1: net/http/pprof on the metrics listener

	BackendURL *url.URL
	AuthsvcURL *url.URL
	WebURL     *url.URL // nil: paths outside /api are 404

	JWKSURL   string // "" disables JWKS
	JWTSecret []byte // nil disables HS256
	Issuer    string
	Audience  string
	Leeway    time.Duration
	// SignatureCacheSize bounds the verified-signature cache
	// (SIGNATURE_CACHE_SIZE, default 10000; 0 disables it).
	SignatureCacheSize int

	RedisURL             string         // "" means in-process limiting only, and no revocation
	Redis                *redisx.Config // REDIS_URL parsed (with REDIS_CA_FILE, REDIS_SENTINEL_PASSWORD); nil when off
	RevocationPrefix     string         // REDIS_PREFIX: Redis key prefix shared with authsvc
	RevocationStartWait  time.Duration  // REVOCATION_START_WAIT: how long start-up waits for the first read
	AuthRateLimit        ratelimit.Limit
	AuthGeneralRateLimit ratelimit.Limit
	TrustedProxies       *clientip.Resolver
	AllowedOrigins       []string
	CookiePrefix         string

	// RoutesFile is PROXY_ROUTES_FILE: a YAML routes file replacing the
	// built-in routing; "" keeps it. RoutesPoll is how often its content is
	// checked for changes (ROUTES_POLL_INTERVAL, default 2s).
	RoutesFile string
	RoutesPoll time.Duration
	// Routes is PROXY_ROUTES_FILE parsed and checked, and RoutesData the
	// bytes it was parsed from (later reloads compare against them).
	Routes     routeConfig
	RoutesData []byte
	// VerifyAddr is VERIFY_ADDR, the forward-auth listener; "" disables it.
	VerifyAddr string

	UpstreamTimeout time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration

	// Warnings are logged at start-up (empty JWT_ISSUER / JWT_AUDIENCE).
	Warnings []string
}

// loadConfig reads the environment through lookup (os.LookupEnv), and the
// files it names (PROXY_ROUTES_FILE, REDIS_CA_FILE), and reports
// every problem at once, each naming its variable and never a secret's
// value. A variable set to "" differs from an unset one: SPEC's "empty
// disables" (JWKS_URL=, REDIS_URL=, PROXY_METRICS_ADDR=).
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	e := envconf.FromLookup(lookup)
	plain := e.Getenv
	optional := e.Disableable
	c := config{
		LogLevel:        e.LogLevel("LOG_LEVEL", "info"),
		Addr:            e.Addr("PROXY_ADDR", ":8080"),
		MetricsAddr:     e.DisableableAddr("PROXY_METRICS_ADDR", ":9090"),
		Issuer:          e.Str("JWT_ISSUER", ""),
		Audience:        e.Str("JWT_AUDIENCE", ""),
		Leeway:          e.NonNegDuration("JWT_LEEWAY", 30*time.Second),
		CookiePrefix:    e.Str("AUTH_COOKIE_PREFIX", wire.DefaultCookiePrefix),
		UpstreamTimeout: e.Duration("UPSTREAM_TIMEOUT", 30*time.Second),
		RoutesFile:      e.Str("PROXY_ROUTES_FILE", ""),
		RoutesPoll:      e.Duration("ROUTES_POLL_INTERVAL", 2*time.Second),
		VerifyAddr:      e.Str("VERIFY_ADDR", ""),
		DrainDelay:      e.NonNegDuration("DRAIN_DELAY", 0),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		// Same default and variable meaning as authsvc's: both sides must
		// agree on the key and channel names.
		RevocationPrefix:    e.Str("REDIS_PREFIX", wire.DefaultRedisPrefix),
		RevocationStartWait: e.NonNegDuration("REVOCATION_START_WAIT", 2*time.Second),
	}
	if c.VerifyAddr != "" {
		c.VerifyAddr = e.Addr("VERIFY_ADDR", "")
	}
	if c.RoutesFile != "" {
		// Read and checked now, so its problems are reported with every
		// other one; a bad file refuses to start (later reloads keep the
		// last good table instead).
		data, err := os.ReadFile(c.RoutesFile)
		if err == nil {
			c.Routes, err = parseRoutesFile(data, c.UpstreamTimeout)
		}
		if err != nil {
			e.Fail("PROXY_ROUTES_FILE", fmt.Sprintf("%s: %v", c.RoutesFile, err))
		} else {
			c.RoutesData = data
		}
	}
	c.BackendURL = upstreamURL(e, "BACKEND_URL", "http://127.0.0.1:8081")
	c.AuthsvcURL = upstreamURL(e, "AUTHSVC_URL", "http://127.0.0.1:8082")
	c.WebURL = upstreamURL(e, "WEB_URL", "")

	jwksDefault := ""
	if c.AuthsvcURL != nil {
		jwksDefault = strings.TrimRight(c.AuthsvcURL.String(), "/") + "/api/auth/jwks"
	}
	if v := optional("JWKS_URL", jwksDefault); v != "" {
		c.JWKSURL = envconf.New(func(string) string { return v }).URL("JWKS_URL", "", "http", "https")
		if c.JWKSURL == "" {
			e.Fail("JWKS_URL", "not a valid URL: want http(s)://host[:port]/path")
		}
	}
	if s := e.Secret("JWT_SECRET", 32, false); s != "" {
		c.JWTSecret = []byte(s)
	}
	if c.JWKSURL == "" && plain("JWT_SECRET") == "" {
		e.Fail("JWKS_URL", "neither JWKS_URL nor JWT_SECRET is set: set at least one so tokens can be verified")
	}

	// REDIS_URL: one server, Sentinel or Cluster (kit/redisx).
	if v := optional("REDIS_URL", "redis://127.0.0.1:6379/0"); v != "" {
		if c.Redis = redisx.FromEnv(e, v, ", or empty for in-process limiting"); c.Redis != nil {
			c.RedisURL = v
		}
	}
	if strings.ContainsAny(c.RevocationPrefix, " \t\r\n") {
		e.Fail("REDIS_PREFIX", "want a Redis key prefix without spaces, like gatehouse:")
	}
	switch v := strings.TrimSpace(plain("PPROF")); v {
	case "", "0", "false":
	case "1", "true":
		c.PProf = true
	default:
		e.Fail("PPROF", "want 1 or 0")
	}
	c.SignatureCacheSize = 10_000
	if v := strings.TrimSpace(plain("SIGNATURE_CACHE_SIZE")); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 10_000_000 {
			e.Fail("SIGNATURE_CACHE_SIZE", "want a whole number of entries from 0 (off) to 10000000")
		} else {
			c.SignatureCacheSize = n
		}
	}
	c.AuthRateLimit = limitVar(e, "AUTH_RATE_LIMIT", "10/m")
	c.AuthGeneralRateLimit = limitVar(e, "AUTH_GENERAL_RATE_LIMIT", "120/m")

	tp, err := clientip.NewResolver(splitList(e.Str("TRUSTED_PROXIES", "")))
	if err != nil {
		e.Fail("TRUSTED_PROXIES", strings.ReplaceAll(err.Error(), "\n", "; ")+": want comma-separated CIDRs or IPs")
	}
	c.TrustedProxies = tp

	for _, o := range splitList(e.Str("ALLOWED_ORIGINS", "")) {
		if n, ok := wire.ParseOrigin(o); ok {
			c.AllowedOrigins = append(c.AllowedOrigins, n)
		} else {
			e.Fail("ALLOWED_ORIGINS", fmt.Sprintf("%q: want comma-separated origins like https://app.example.com", o))
		}
	}
	if !wire.ValidCookiePrefix(c.CookiePrefix) {
		e.Fail("AUTH_COOKIE_PREFIX", "want a cookie-name token (letters, digits, -_.)")
	}
	if c.Issuer == "" {
		c.Warnings = append(c.Warnings, "JWT_ISSUER is empty: tokens from any issuer are accepted")
	}
	if c.Audience == "" {
		c.Warnings = append(c.Warnings, "JWT_AUDIENCE is empty: tokens for any audience are accepted")
	}
	return c, e.Err()
}

// upstreamURL reads an http(s) base URL without path, query or user info.
func upstreamURL(e *envconf.Reader, key, def string) *url.URL {
	v := e.URL(key, def, "http", "https")
	if v == "" {
		return nil
	}
	u, _ := url.Parse(v)
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		e.Fail(key, "want a base URL like http://host:port, without path, query or credentials")
		return nil
	}
	u.Path = ""
	return u
}

func limitVar(e *envconf.Reader, key, def string) ratelimit.Limit {
	l, err := ratelimit.ParseLimit(e.Str(key, def))
	if err != nil {
		e.Fail(key, err.Error())
		l, _ = ratelimit.ParseLimit(def)
	}
	return l
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// tokenCacheSize maps SIGNATURE_CACHE_SIZE to token.Config.CacheSize, where
// 0 means the default and a negative size disables the cache.
func (c config) tokenCacheSize() int {
	if c.SignatureCacheSize == 0 {
		return -1
	}
	return c.SignatureCacheSize
}
