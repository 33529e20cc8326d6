package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/authsvc/internal/keys"
	"gatehouse.dev/authsvc/internal/mail"
	"gatehouse.dev/authsvc/internal/password"
	"gatehouse.dev/kit/envconf"
	"gatehouse.dev/kit/redisx"
	"gatehouse.dev/kit/wire"
)

// config is everything authsvc reads from its environment (SPEC.md,
// "Configuration"), checked once, with every problem reported together.
type config struct {
	LogLevel        string
	Addr            string
	MetricsAddr     string // "" disables the metrics listener
	DatabaseURL     string
	BaseURL         string // AUTH_BASE_URL without a trailing slash: iss and aud
	Secure          bool   // AUTH_BASE_URL is https: __Secure- cookies
	AuthSecret      string
	JWTSecret       string
	JWTTTL          time.Duration
	SessionTTL      time.Duration
	CookiePrefix    string
	TrustedOrigins  []string // origins (scheme://host[:port]), lower-case
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	DBTimeout       time.Duration // per database call, so nothing hangs when Postgres is down

	PrivateKeyFile     string             // JWT_PRIVATE_KEY_FILE: PEM PKCS#8 Ed25519
	PrivateKey         ed25519.PrivateKey // its key, read by loadConfig; nil without one (or with JWT_SECRET, which wins)
	KeyActivationDelay time.Duration      // a rotated key signs only after this
	KeyReloadInterval  time.Duration      // replicas re-read stored keys this often

	Password        password.Params
	HashConcurrency int
	HashQueueWait   time.Duration // PASSWORD_HASH_QUEUE_WAIT: then 503, shedding load

	// RedisURL ("" = off) is where session revocations are published for
	// the proxies (internal/revoke) and failed sign-ins counted per account
	// (internal/throttle).
	RedisURL     string
	Redis        *redisx.Config // RedisURL parsed, with REDIS_CA_FILE and REDIS_SENTINEL_PASSWORD; nil when off
	RedisPrefix  string         // REDIS_PREFIX: prepended to every key and channel
	RedisTimeout time.Duration  // dial, read and write: a dead Redis never stalls sign-out for long

	SignInFreeFailures int           // failures per account before sign-ins slow down
	SignInDelayBase    time.Duration // first delay, doubling per further failure
	SignInDelayMax     time.Duration // delay cap (a delay, never a lock-out)
	SignInFailWindow   time.Duration // the count expires this long after the last attempt

	// Mail (docs/account-lifecycle.md). SMTPURL "" refuses every mail with
	// 501 MAIL_NOT_CONFIGURED; it is checked by internal/mail.ParseURL.
	SMTPURL     string
	MailFrom    string
	SMTPTimeout time.Duration // one delivery attempt; three attempts at most
	// RequireEmailVerification: unverified users get 403 EMAIL_NOT_VERIFIED
	// at sign-in, and sign-up mails a verification link instead of
	// starting a session (Better Auth's requireEmailVerification).
	RequireEmailVerification bool
	// Reset and verification mails per hour, per recipient and per client IP.
	MailPerEmail, MailPerIP int
	// MailAnswerFloor is the least time request-password-reset,
	// send-verification-email and (with RequireEmailVerification) sign-up
	// take, so an email that gets no mail answers as late as one that does.
	MailAnswerFloor time.Duration
}

// loadConfig reads and checks the whole environment, and the files it names
// (JWT_PRIVATE_KEY_FILE, REDIS_CA_FILE), and reports every problem at once,
// so run starts nothing on a configuration it would refuse later.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	e := envconf.FromLookup(lookup)
	c := config{
		LogLevel:        e.LogLevel("LOG_LEVEL", "info"),
		Addr:            e.Addr("AUTHSVC_ADDR", ":8082"),
		MetricsAddr:     e.DisableableAddr("AUTHSVC_METRICS_ADDR", ":9092"),
		DatabaseURL:     e.URL("DATABASE_URL", "", "postgres", "postgresql"),
		AuthSecret:      e.Secret("AUTH_SECRET", 32, true),
		JWTSecret:       e.Secret("JWT_SECRET", 32, false),
		JWTTTL:          e.Duration("JWT_TTL", 15*time.Minute),
		SessionTTL:      e.Duration("SESSION_TTL", 168*time.Hour),
		CookiePrefix:    e.Str("AUTH_COOKIE_PREFIX", wire.DefaultCookiePrefix),
		DrainDelay:      e.NonNegDuration("DRAIN_DELAY", 0),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		DBTimeout:       e.Duration("DB_TIMEOUT", 3*time.Second),

		PrivateKeyFile:     e.Str("JWT_PRIVATE_KEY_FILE", ""),
		KeyActivationDelay: e.NonNegDuration("KEY_ACTIVATION_DELAY", 10*time.Minute),
		KeyReloadInterval:  e.Duration("KEY_RELOAD_INTERVAL", 30*time.Second),

		Password: password.Params{
			Memory:      uint32(e.Int("PASSWORD_HASH_MEMORY_KIB", int(password.DefaultParams.Memory), 1024, 4<<20)),
			Iterations:  uint32(e.Int("PASSWORD_HASH_ITERATIONS", int(password.DefaultParams.Iterations), 1, 64)),
			Parallelism: uint8(e.Int("PASSWORD_HASH_PARALLELISM", int(password.DefaultParams.Parallelism), 1, 255)),
			SaltLen:     password.DefaultParams.SaltLen,
			KeyLen:      password.DefaultParams.KeyLen,
		},
		// Each argon2id run holds Memory; more runs than cores only queue on
		// the CPU while holding memory, so the bound defaults to GOMAXPROCS.
		HashConcurrency: e.Int("PASSWORD_HASH_CONCURRENCY", min(max(runtime.GOMAXPROCS(0), 1), 8), 1, 256),
		HashQueueWait:   e.Duration("PASSWORD_HASH_QUEUE_WAIT", 10*time.Second),

		RedisURL:     e.Str("REDIS_URL", ""),
		RedisPrefix:  e.Str("REDIS_PREFIX", wire.DefaultRedisPrefix),
		RedisTimeout: e.Duration("REDIS_TIMEOUT", 500*time.Millisecond),

		SignInFreeFailures: e.Int("SIGNIN_FREE_FAILURES", 5, 1, 1000),
		SignInDelayBase:    e.Duration("SIGNIN_DELAY_BASE", 250*time.Millisecond),
		SignInDelayMax:     e.Duration("SIGNIN_DELAY_MAX", 8*time.Second),
		SignInFailWindow:   e.Duration("SIGNIN_FAIL_WINDOW", 15*time.Minute),

		SMTPURL:         e.Str("SMTP_URL", ""),
		MailFrom:        e.Str("MAIL_FROM", ""),
		SMTPTimeout:     e.Duration("SMTP_TIMEOUT", 10*time.Second),
		MailPerEmail:    e.Int("MAIL_LIMIT_PER_EMAIL", 5, 1, 1000),
		MailPerIP:       e.Int("MAIL_LIMIT_PER_IP", 20, 1, 100000),
		MailAnswerFloor: e.NonNegDuration("MAIL_ANSWER_FLOOR", time.Second),
	}
	if c.PrivateKeyFile != "" && c.JWTSecret == "" {
		// Read and parsed now, so a missing or malformed key is reported
		// with every other problem, before anything opens the database.
		b, err := os.ReadFile(c.PrivateKeyFile)
		switch {
		case err != nil:
			e.Fail("JWT_PRIVATE_KEY_FILE", fmt.Sprintf("cannot read %s: %v", c.PrivateKeyFile, errors.Unwrap(err)))
		default:
			if c.PrivateKey, err = keys.ParsePrivateKeyPEM(b); err != nil {
				e.Fail("JWT_PRIVATE_KEY_FILE", err.Error())
			}
		}
	}
	if v, ok := e.Lookup("REQUIRE_EMAIL_VERIFICATION"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.Fail("REQUIRE_EMAIL_VERIFICATION", fmt.Sprintf("%q: want true or false", v))
		}
		c.RequireEmailVerification = b
	}
	if c.SMTPURL != "" {
		if err := mail.ParseURL(c.SMTPURL); err != nil {
			e.Fail("SMTP_URL", err.Error())
		}
		if c.MailFrom == "" {
			e.Fail("MAIL_FROM", "required when SMTP_URL is set: want an address like Gatehouse <noreply@example.com>")
		} else if _, err := netmail.ParseAddress(c.MailFrom); err != nil {
			e.Fail("MAIL_FROM", fmt.Sprintf("%q: want an address like Gatehouse <noreply@example.com>", c.MailFrom))
		}
	}
	if c.RequireEmailVerification && c.SMTPURL == "" {
		e.Fail("REQUIRE_EMAIL_VERIFICATION", "needs SMTP_URL: without mail nobody could verify, and so nobody could sign in")
	}
	if c.SMTPTimeout > time.Minute {
		e.Fail("SMTP_TIMEOUT", "want at most 1m: a request waits for the mail")
	}
	if c.RedisURL != "" {
		c.Redis = redisx.FromEnv(e, c.RedisURL, "") // one server, Sentinel or Cluster
	}
	if c.SignInDelayMax < c.SignInDelayBase {
		e.Fail("SIGNIN_DELAY_MAX", "want at least SIGNIN_DELAY_BASE")
	}
	if c.SignInDelayMax > time.Minute {
		e.Fail("SIGNIN_DELAY_MAX", "want at most 1m: longer holds connections and looks like a lock-out")
	}
	if _, ok := e.Lookup("DATABASE_URL"); !ok {
		e.Fail("DATABASE_URL", "required but not set: want postgres://user:pass@host:port/db")
	}

	base := e.URL("AUTH_BASE_URL", "http://localhost:8080", "http", "https")
	if base != "" {
		u, _ := url.Parse(base)
		c.BaseURL = strings.TrimSuffix(base, "/")
		c.Secure = u.Scheme == "https"
	}
	if !wire.ValidCookiePrefix(c.CookiePrefix) {
		e.Fail("AUTH_COOKIE_PREFIX", fmt.Sprintf("%q: want letters, digits, '.', '_' or '-'", c.CookiePrefix))
	}
	if c.JWTTTL > 24*time.Hour {
		e.Fail("JWT_TTL", "want at most 24h: access tokens cannot be revoked")
	}
	if c.SessionTTL > 400*24*time.Hour {
		e.Fail("SESSION_TTL", "want at most 9600h: browsers cap cookies at 400 days")
	}

	if v, ok := e.Lookup("TRUSTED_ORIGINS"); ok {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			origin, ok := wire.ParseOrigin(o)
			if !ok {
				e.Fail("TRUSTED_ORIGINS", fmt.Sprintf("%q: want comma-separated origins like https://app.example.com", o))
				continue
			}
			c.TrustedOrigins = append(c.TrustedOrigins, origin)
		}
	} else if c.BaseURL != "" {
		origin, _ := wire.OriginOf(c.BaseURL)
		c.TrustedOrigins = []string{origin}
	}
	return c, e.Err()
}
