package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/keys"
	"gatehouse.dev/authsvc/internal/mail"
	"gatehouse.dev/authsvc/internal/mailtoken"
	"gatehouse.dev/authsvc/internal/outbox"
	"gatehouse.dev/authsvc/internal/password"
	"gatehouse.dev/authsvc/internal/revoke"
	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/authsvc/internal/throttle"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/authsvc/migrations"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/logging"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/redisx"
)

// keyMargin is added to JWT_TTL before a superseded key leaves the JWKS:
// it covers the proxies' leeway (30s) and clock skew between replicas.
const keyMargin = 5 * time.Minute

// run is the whole program; main only calls it, with the process's
// arguments (without the program name), environment, and output. With no
// arguments it serves until ctx ends (main cancels it on SIGINT or SIGTERM),
// then drains and shuts down gracefully; `keys rotate` and
// `import-better-auth` run once and write their result to stdout. Logs go
// to stderr.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
	case len(args) == 2 && args[0] == "keys" && args[1] == "rotate":
	case len(args) >= 1 && args[0] == "import-better-auth":
	default:
		return fmt.Errorf("unknown command %q: want no arguments (serve), \"keys rotate\" or \"import-better-auth --from postgres://…\"", args)
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(stderr, cfg.LogLevel, "authsvc")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	switch {
	case len(args) == 2 && args[0] == "keys":
		return runKeysRotate(ctx, cfg, log, stdout)
	case len(args) >= 1:
		return runImportBetterAuth(ctx, cfg, log, stdout, stderr, args[1:])
	}

	mailer, err := mail.New(mail.Config{URL: cfg.SMTPURL, From: cfg.MailFrom, Timeout: cfg.SMTPTimeout})
	if err != nil {
		return err
	}
	if !mailer.Enabled() {
		log.Warn("SMTP_URL is not set: password reset and email verification are refused (501) until it is")
	}

	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	metrics := httpx.NewMetrics("authsvc")
	m := newAuthMetrics(metrics.Registry)
	hasher, err := password.New(cfg.Password, cfg.HashConcurrency, password.Observer{Hashed: m.observeHash})
	if err != nil {
		return err
	}
	m.watchQueue(hasher)
	if cfg.Password.Weak() {
		log.Warn("password hashing parameters are below OWASP's minimum (m=19456 KiB, t=2, p=1); use only in tests",
			zap.Uint32("memory_kib", cfg.Password.Memory), zap.Uint32("iterations", cfg.Password.Iterations))
	}
	ks, err := openKeys(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	go ks.Run(ctx, cfg.KeyReloadInterval)
	go sweepSessions(ctx, db, log)

	rdb, err := openRedis(ctx, cfg, log)
	if err != nil {
		return err
	}
	var (
		revoker *revoke.Publisher
		thr     *throttle.Throttle
	)
	var qrdb redis.UniversalClient // nil interface, not a nil *Client, without Redis
	if rdb != nil {
		defer rdb.Close()
		revoker = newRevoker(cfg, rdb, m, log)
		go revoker.Run(ctx)
		thr = newThrottle(cfg, rdb)
		qrdb = rdb
	} else {
		log.Warn("REDIS_URL is not set: deleted users' todos are not removed by the backend until it is (the events wait in the user_events table)")
	}
	relay := outbox.NewRelay(db, qrdb, cfg.RedisPrefix, log)
	relay.Relayed = func(n int, err error) {
		if err != nil {
			m.relayFailures.Inc()
		}
		m.eventsRelayed.Add(float64(n))
	}
	go relay.Run(ctx)

	d := &deps{
		cfg: cfg, db: db, hasher: hasher, keys: ks, metrics: m, lc: &httpx.Lifecycle{},
		cookies: newCookieJar(cfg), revoker: revoker, throttle: thr,
		mail: mailer, relay: relay,
		quota: throttle.NewMailQuota(qrdb, cfg.RedisPrefix, cfg.MailPerEmail, cfg.MailPerIP, time.Hour),
	}
	return serve(ctx, cfg, log, metrics, d)
}

// openDB opens Postgres and applies the embedded migrations (under kit's
// advisory lock, so replicas may start together).
func openDB(ctx context.Context, cfg config, log *zap.Logger) (*bun.DB, error) {
	db, err := pgdb.Open(cfg.DatabaseURL, pgdb.Options{})
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := pgdb.Migrate(mctx, db, migrations.FS, "authsvc", log); err != nil {
		db.Close()
		if pgdb.Unavailable(err) {
			return nil, fmt.Errorf("DATABASE_URL: database unreachable: %w", err)
		}
		return nil, err
	}
	return db, nil
}

// openKeys loads the signing keys, honouring JWT_SECRET (HS256) and
// JWT_PRIVATE_KEY_FILE (a fixed Ed25519 key, read by loadConfig).
func openKeys(ctx context.Context, cfg config, db *bun.DB, log *zap.Logger) (*keys.Set, error) {
	opt := keys.Options{
		DB: db, AuthSecret: cfg.AuthSecret, HMACSecret: cfg.JWTSecret,
		TokenTTL: cfg.JWTTTL, Margin: keyMargin, Log: log,
	}
	opt.FileKey = cfg.PrivateKey
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return keys.Open(kctx, opt)
}

// runKeysRotate implements `authsvc keys rotate`.
func runKeysRotate(ctx context.Context, cfg config, log *zap.Logger, out io.Writer) error {
	if cfg.JWTSecret != "" {
		return errors.New("keys rotate: JWT_SECRET is set, so tokens are HS256: rotate by changing JWT_SECRET on authsvc and the proxy")
	}
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	rot, err := keys.Rotate(ctx, db, cfg.AuthSecret, cfg.KeyActivationDelay, cfg.JWTTTL, keyMargin)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	log.Info("signing key rotated: published now, signs from activates_at",
		zap.String("kid", rot.KID), zap.Time("activates_at", rot.ActivatesAt), zap.Strings("pruned", rot.Pruned))
	_, err = fmt.Fprintf(out, "new signing key %s: in the JWKS now, signs from %s; pruned %d expired key(s)\n",
		rot.KID, rot.ActivatesAt.Format(time.RFC3339), len(rot.Pruned))
	return err
}

// openRedis connects to REDIS_URL, or returns nil when it is unset. Redis
// being down at start-up is only a warning: revocations queue for retry and
// sign-in throttling fails open until it is back.
func openRedis(ctx context.Context, cfg config, log *zap.Logger) (redis.UniversalClient, error) {
	if cfg.Redis == nil {
		log.Warn("REDIS_URL is not set: signed-out sessions are not revoked at the proxies, so their " +
			"access tokens stay valid until JWT_TTL after sign-out, and failed sign-ins are not slowed per account")
		return nil, nil
	}
	// go-redis logs pool trouble through a process-wide logger, to stderr by
	// default; our own warnings already report every failure that matters.
	redis.SetLogger(redisLogger{log})
	// Short timeouts and one retry: sign-out makes one attempt in-line and
	// leaves the rest to the background retry. One dial per attempt (go-redis
	// would otherwise dial 5 times).
	rdb := cfg.Redis.NewClient(redisx.Options{
		DialTimeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
		PoolTimeout: cfg.RedisTimeout, MaxRetries: 1, DialAttempts: 1,
	})
	pctx, cancel := context.WithTimeout(ctx, 2*cfg.RedisTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		log.Warn("Redis unreachable at start-up: revocations will be retried and sign-in throttling fails open until it is back",
			zap.Stringer("redis", cfg.Redis), zap.Error(err))
	}
	return rdb, nil
}

// redisLogger sends go-redis's internal messages to zap at debug level.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("go-redis: " + fmt.Sprintf(format, v...))
}

func newRevoker(cfg config, rdb redis.UniversalClient, m *authMetrics, log *zap.Logger) *revoke.Publisher {
	return revoke.New(rdb, revoke.Options{
		Prefix: cfg.RedisPrefix, TokenTTL: cfg.JWTTTL,
		Observer: revoke.Observer{
			Published: func(n int) { m.revokePublished.Add(float64(n)) },
			Failed:    func(n int) { m.revokeFailed.Add(float64(n)) },
			Dropped: func(n int) {
				m.revokeDropped.Add(float64(n))
				log.Error("session revocations given up: Redis stayed unreachable", zap.Int("count", n))
			},
			Retried: func(n int, err error) {
				if err == nil {
					log.Info("queued session revocations published", zap.Int("count", n))
				}
			},
		},
	})
}

func newThrottle(cfg config, rdb redis.UniversalClient) *throttle.Throttle {
	return throttle.New(rdb, throttle.Options{
		Prefix: cfg.RedisPrefix, Free: cfg.SignInFreeFailures,
		Base: cfg.SignInDelayBase, Max: cfg.SignInDelayMax, Window: cfg.SignInFailWindow,
	})
}

// sweepSessions deletes expired sessions hourly; lookups already ignore them.
func sweepSessions(ctx context.Context, db *bun.DB, log *zap.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := session.NewStore(db, session.Options{}).DeleteExpired(sctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				log.Warn("deleting expired sessions failed", zap.Error(err))
			} else if n > 0 {
				log.Info("deleted expired sessions", zap.Int64("count", n))
			}
			sctx, cancel = context.WithTimeout(ctx, 30*time.Second)
			_, err = mailtoken.NewStore(db).DeleteExpired(sctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				log.Warn("deleting expired mail tokens failed", zap.Error(err))
			}
		}
	}
}

// deps is what the handlers share, built once by run.
type deps struct {
	cfg     config
	lc      *httpx.Lifecycle // /readyz: 503 while draining
	db      *bun.DB
	hasher  *password.Hasher
	keys    *keys.Set
	metrics *authMetrics
	cookies *cookieJar
	// revoker and throttle are nil without REDIS_URL: revocation is then
	// not published and sign-ins are not counted per account.
	revoker  *revoke.Publisher
	throttle *throttle.Throttle
	// mail refuses every mail (501) without SMTP_URL; quota keeps its counts
	// in this process without Redis; relay leaves events in the outbox
	// table without Redis.
	mail  *mail.Sender
	quota *throttle.MailQuota
	relay *outbox.Relay
}

func (d *deps) tokens(db bun.IDB) *mailtoken.Store { return mailtoken.NewStore(db) }

func (d *deps) users(db bun.IDB) *user.Store { return user.NewStore(db) }

func (d *deps) sessions(db bun.IDB) *session.Store {
	return session.NewStore(db, session.Options{TTL: d.cfg.SessionTTL})
}

// hashCtx bounds the wait for a password hashing slot
// (PASSWORD_HASH_QUEUE_WAIT): under a flood the queue answers 503 rather
// than holding requests for minutes.
func (d *deps) hashCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.cfg.HashQueueWait)
}

// dbCtx bounds one database round trip, so a dead Postgres answers 503
// quickly instead of hanging the request.
func (d *deps) dbCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.cfg.DBTimeout)
}
