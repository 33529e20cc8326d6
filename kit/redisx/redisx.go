// Package redisx turns REDIS_URL (and its companions REDIS_CA_FILE and
// REDIS_SENTINEL_PASSWORD) into one go-redis client, whatever the topology:
//
//	redis://[[user]:password@]host[:port][/db]        one server
//	rediss://…                                         the same over TLS
//	redis+sentinel://[[user]:password@]h1:p1,h2:p2/<master>[/db]
//	                                                   a master found through Sentinel
//	redis+cluster://[[user]:password@]h1:p1,h2:p2      Redis Cluster (seed nodes)
//	rediss+sentinel://…, rediss+cluster://…            the same over TLS
//
// The user and password are the data nodes' (master, replicas, cluster
// nodes); sentinels that require a password of their own get it from
// REDIS_SENTINEL_PASSWORD. Over TLS the server certificate is checked against
// the system roots, or against REDIS_CA_FILE (PEM) alone when it is set, and
// must name the host dialled. Missing ports default to 6379 (26379 for
// sentinels).
//
// Every error names REDIS_URL (or the companion at fault) and never quotes
// the URL, which may hold a password.
package redisx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kind is the topology a URL names.
type Kind int

// Topologies.
const (
	Single   Kind = iota // redis://, rediss://
	Sentinel             // redis+sentinel://
	Cluster              // redis+cluster://
)

func (k Kind) String() string {
	switch k {
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return "single"
}

// Extra holds REDIS_URL's companion settings.
type Extra struct {
	// CAFile (REDIS_CA_FILE) is a PEM bundle that replaces the system roots
	// for rediss:// connections. Ignored, with an error, for plain redis://.
	CAFile string
	// SentinelPassword (REDIS_SENTINEL_PASSWORD) authenticates to sentinels
	// that have requirepass set; "" sends no AUTH to them.
	SentinelPassword string
}

// Config is a parsed REDIS_URL.
type Config struct {
	Kind Kind
	// Addrs are the server (Single), sentinel (Sentinel) or seed node
	// (Cluster) addresses, host:port.
	Addrs      []string
	MasterName string // Sentinel only
	DB         int    // not for Cluster, which has only database 0

	Username, Password string
	SentinelPassword   string
	TLS                *tls.Config // nil: plain TCP
}

var schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]{0,30}$`)

const want = "want redis://host:port/db, rediss://…, redis+sentinel://h1:p1,h2:p2/master[/db] or redis+cluster://h1:p1,h2:p2"

// ConfigError is a bad setting; Var names the variable at fault (REDIS_URL,
// REDIS_CA_FILE), Msg says what is wrong without quoting a secret.
type ConfigError struct{ Var, Msg string }

func (e *ConfigError) Error() string { return e.Var + ": " + e.Msg }

func fail(format string, a ...any) error {
	return &ConfigError{"REDIS_URL", fmt.Sprintf(format, a...)}
}

func failCA(format string, a ...any) error {
	return &ConfigError{"REDIS_CA_FILE", fmt.Sprintf(format, a...)}
}

// Env is what FromEnv needs of a configuration reader (kit/envconf.Reader).
type Env interface {
	Str(key, def string) string // trimmed value, or def
	Plain(key string) string    // value as set
	Fail(key, want string)      // record a problem
}

// FromEnv parses raw, the value of REDIS_URL, with REDIS_CA_FILE and
// REDIS_SENTINEL_PASSWORD from e, the one way every service reads them. A
// problem is recorded on e (never quoting the URL, which can hold a
// password), with hint appended to REDIS_URL's message, and FromEnv
// returns nil.
func FromEnv(e Env, raw, hint string) *Config {
	rc, err := Parse(raw, Extra{CAFile: e.Str("REDIS_CA_FILE", ""), SentinelPassword: e.Plain("REDIS_SENTINEL_PASSWORD")})
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		if ce.Var == "REDIS_URL" {
			ce.Msg += hint
		}
		e.Fail(ce.Var, ce.Msg)
		return nil
	case err != nil:
		e.Fail("REDIS_URL", "not valid")
		return nil
	}
	return rc
}

// Parse reads a REDIS_URL. It reads x.CAFile when the URL asks for TLS.
func Parse(raw string, x Extra) (*Config, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fail("empty: %s", want)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fail("not a URL: %s", want)
	}
	scheme = strings.ToLower(scheme)
	c := &Config{SentinelPassword: x.SentinelPassword}
	tlsOn := false
	switch scheme {
	case "redis":
	case "rediss":
		tlsOn = true
	case "redis+sentinel", "rediss+sentinel":
		c.Kind, tlsOn = Sentinel, scheme == "rediss+sentinel"
	case "redis+cluster", "rediss+cluster":
		c.Kind, tlsOn = Cluster, scheme == "rediss+cluster"
	default:
		if schemeRE.MatchString(scheme) {
			return nil, fail("unsupported scheme %q: %s", scheme, want)
		}
		return nil, fail("unsupported scheme: %s", want)
	}
	if strings.ContainsAny(rest, "#") {
		return nil, fail("a fragment (#…) is not allowed: %s", want)
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if rest[i+1:] != "" {
			return nil, fail("query parameters are not supported (timeouts come from the service's own settings): %s", want)
		}
		rest = rest[:i]
	}
	authority, path, _ := strings.Cut(rest, "/")
	hosts := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo := authority[:i]
		hosts = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if c.Username, err = url.PathUnescape(user); err != nil {
			return nil, fail("the user name is not valid percent-encoding")
		}
		if hasPass {
			if c.Password, err = url.PathUnescape(pass); err != nil {
				return nil, fail("the password is not valid percent-encoding")
			}
		} else if c.Username != "" {
			// redis://secret@host: the lone part is the password, as for
			// go-redis and redis-cli (AUTH <password>, no user).
			c.Password, c.Username = c.Username, ""
		}
	}
	defPort := "6379"
	if c.Kind == Sentinel {
		defPort = "26379"
	}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := hostPort(strings.TrimSpace(h), defPort)
		if err != nil {
			return nil, err
		}
		c.Addrs = append(c.Addrs, addr)
	}
	if c.Kind == Single && len(c.Addrs) > 1 {
		return nil, fail("%s:// takes one host; for several use redis+sentinel:// or redis+cluster://", scheme)
	}

	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	dbFrom := func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1<<16 {
			return fail("the database must be a number like /0: %s", want)
		}
		c.DB = n
		return nil
	}
	switch c.Kind {
	case Single:
		if len(segs) > 1 {
			return nil, fail("the path must be a database number like /0: %s", want)
		}
		if len(segs) == 1 {
			if err := dbFrom(segs[0]); err != nil {
				return nil, err
			}
		}
	case Sentinel:
		if len(segs) == 0 || len(segs) > 2 {
			return nil, fail("redis+sentinel:// needs the master's name as the path: redis+sentinel://h1:26379,h2:26379/mymaster[/db]")
		}
		if c.MasterName = segs[0]; !nameOK(c.MasterName) {
			return nil, fail("the master name must be letters, digits and -_.")
		}
		if len(segs) == 2 {
			if err := dbFrom(segs[1]); err != nil {
				return nil, err
			}
		}
	case Cluster:
		if len(segs) > 1 || (len(segs) == 1 && segs[0] != "0") {
			return nil, fail("redis+cluster:// has only database 0: drop the path")
		}
	}
	if x.CAFile != "" && !tlsOn {
		return nil, failCA("set but REDIS_URL is not TLS: use rediss://, rediss+sentinel:// or rediss+cluster://")
	}
	if tlsOn {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if x.CAFile != "" {
			pem, err := os.ReadFile(x.CAFile)
			if err != nil {
				return nil, failCA("cannot read %s: %v", x.CAFile, errors.Unwrap(err))
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, failCA("%s holds no PEM certificate", x.CAFile)
			}
			c.TLS.RootCAs = pool
		}
	}
	return c, nil
}

func nameOK(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != ""
}

// hostPort validates one host[:port] and adds the default port.
func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", fail("a host is missing: %s", want)
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		var err error
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			host = h[1 : len(h)-1]
		} else if host, port, err = net.SplitHostPort(h); err != nil {
			return "", fail("host %q is not host:port", trunc(h))
		}
	} else if strings.Contains(h, ":") {
		return "", fail("host %q: put IPv6 addresses in brackets, like [::1]:6379", trunc(h))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fail("host %q has a bad port: want 1-65535", trunc(h))
	}
	if host == "" || strings.ContainsAny(host, " /\\%") {
		return "", fail("host %q is not a host name or address", trunc(h))
	}
	return net.JoinHostPort(host, port), nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// String describes the topology without credentials, for logs:
// "sentinel mymaster via 10.0.0.1:26379,10.0.0.2:26379 (tls)".
func (c *Config) String() string {
	if c == nil {
		return "off"
	}
	var b strings.Builder
	b.WriteString(c.Kind.String())
	if c.MasterName != "" {
		b.WriteString(" " + c.MasterName + " via")
	}
	b.WriteString(" " + strings.Join(c.Addrs, ","))
	if c.Kind != Cluster {
		b.WriteString("/" + strconv.Itoa(c.DB))
	}
	if c.TLS != nil {
		b.WriteString(" (tls)")
	}
	return b.String()
}

// Options tune a client. Zero fields keep go-redis's defaults, except
// MaxRetries (0: no retries) and DialAttempts (0: one dial), where
// go-redis would retry.
type Options struct {
	DialTimeout, ReadTimeout, WriteTimeout, PoolTimeout time.Duration
	MaxRetries                                          int // retries of a failed command; 0: none
	DialAttempts                                        int // dials per command attempt; 0: one
	PoolSize                                            int // per node; 0: go-redis's default
}

// NewClient returns the go-redis client for c: a *redis.Client (Single), a
// failover client that follows Sentinel's master (Sentinel) or a
// *redis.ClusterClient (Cluster). Context deadlines bound every call.
func (c *Config) NewClient(o Options) redis.UniversalClient {
	u := &redis.UniversalOptions{
		Addrs:    c.Addrs,
		DB:       c.DB,
		Username: c.Username, Password: c.Password,
		SentinelPassword:      c.SentinelPassword,
		MasterName:            c.MasterName,
		IsClusterMode:         c.Kind == Cluster,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolTimeout:           o.PoolTimeout,
		PoolSize:              o.PoolSize,
		MaxRetries:            -1,
		DialerRetries:         max(o.DialAttempts, 1),
		ContextTimeoutEnabled: true,
	}
	if o.MaxRetries > 0 {
		u.MaxRetries = o.MaxRetries
	}
	if c.TLS != nil {
		u.TLSConfig = c.TLS.Clone()
	}
	if c.Kind == Cluster {
		// A moved slot or a node that restarted costs a redirect or two.
		u.MaxRedirects = 3
	}
	return redis.NewUniversalClient(u)
}
