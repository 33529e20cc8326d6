// Package pgdb opens Postgres through bun (pgdialect over pgx's database/sql
// driver) with bounded pools and timeouts, and applies embedded migrations
// under a Postgres advisory lock so any number of replicas may start at once.
package pgdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/migrate"
	"go.uber.org/zap"
)

// Options tunes the pool. Zero values take the defaults noted.
type Options struct {
	MaxOpenConns   int           // default 20: Postgres' own limit is shared by every replica
	MaxIdleConns   int           // default MaxOpenConns
	ConnectTimeout time.Duration // default 3s, so a dead database fails fast
}

// Open returns a *bun.DB for dsn. It does not connect; call Ping to check.
func Open(dsn string, o Options) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("DATABASE_URL: not a valid postgres:// URL")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	cfg.ConnectTimeout = o.ConnectTimeout
	// Through PgBouncer in transaction pooling (SPEC "Redis and Postgres
	// beyond one machine") a named prepared statement lives on one server
	// connection while the next query may run on another: pgx's default
	// (cache_statement) then fails with "prepared statement … does not
	// exist" or "… already exists". The simple protocol sends each query as
	// one Query message, which pooling cannot split and which leaves nothing
	// behind on the server. bun interpolates arguments itself (nearly every
	// query text is new, so a statement cache bought little anyway), so the
	// simple protocol loses nothing, and Postgres spent 8–9% less CPU per
	// query than with the extended protocol's unnamed statement ("exec"
	// mode, Parse/Bind/Describe/Execute/Sync; gatebench list50 and create).
	// An explicit default_query_exec_mode in DATABASE_URL wins.
	if !strings.Contains(dsn, "default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = 20
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = o.MaxOpenConns
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(o.MaxOpenConns)
	sqldb.SetMaxIdleConns(o.MaxIdleConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	sqldb.SetConnMaxLifetime(30 * time.Minute)
	return bun.NewDB(sqldb, pgdialect.New()), nil
}

// Migrate applies the *.up.sql / *.tx.up.sql files in fsys (bun/migrate
// naming: 20240101000000_name.tx.up.sql) that are not yet applied. name keys
// the advisory lock and names the bookkeeping tables, so services sharing one
// database do not collide. Concurrent callers wait for the lock; the second
// finds nothing left to do.
func Migrate(ctx context.Context, db *bun.DB, fsys fs.FS, name string, log *zap.Logger) error {
	h := fnv.New64a()
	h.Write([]byte("gatehouse-migrate:" + name))
	key := int64(h.Sum64())

	// The lock is transaction-level, taken in a transaction that stays open
	// (doing nothing else) until every migration is applied, and released by
	// its rollback. A session-level pg_advisory_lock would not survive
	// PgBouncer's transaction pooling: the lock stays on whichever server
	// connection ran the SELECT, a second replica may be handed that very
	// connection (advisory locks are re-entrant) and the unlock may run
	// elsewhere. An open transaction keeps its server connection, so the lock
	// means the same directly and through a pooler. Waiting replicas poll with
	// pg_try_advisory_xact_lock instead of blocking, so they do not sit on
	// server connections the holder needs for the migrations themselves
	// (which run on other connections of its pool): behind a pooler of N
	// server connections, any number of replicas can start at once if N ≥ 2.
	if n := db.Stats().MaxOpenConnections; n == 1 {
		// One connection holds the lock; the migrations need another.
		db.SetMaxOpenConns(2)
		defer db.SetMaxOpenConns(n)
	}
	lock, err := lockTx(ctx, db, key)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Rollback() }()

	migrations := migrate.NewMigrations()
	if err := migrations.Discover(fsys); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	m := migrate.NewMigrator(db, migrations,
		migrate.WithTableName(name+"_migrations"),
		migrate.WithLocksTableName(name+"_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("migrate: init: %w", err)
	}
	group, err := m.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if group.IsZero() {
		log.Info("database schema up to date")
	} else {
		log.Info("database migrated", zap.String("group", group.String()))
	}
	return nil
}

// lockTx returns an open transaction holding the transaction-level advisory
// lock key, polling until it is free or ctx ends.
func lockTx(ctx context.Context, db *bun.DB, key int64) (bun.Tx, error) {
	wait := 50 * time.Millisecond
	for {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return tx, fmt.Errorf("migrate: %w", err)
		}
		var got bool
		if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock(?)", key).Scan(&got); err != nil {
			_ = tx.Rollback()
			return tx, fmt.Errorf("migrate: advisory lock: %w", err)
		}
		if got {
			return tx, nil
		}
		_ = tx.Rollback()
		select {
		case <-ctx.Done():
			return tx, fmt.Errorf("migrate: waiting for another replica's migration: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Unavailable reports whether err means the database could not be reached
// (down, restarting, refusing connections, or too slow) rather than a bad
// query: callers answer 503 UNAVAILABLE, not 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, sql.ErrConnDone),
		// A pooled connection that broke under the request (pgx closes one
		// whose query was cancelled; database/sql cannot retry mid-query).
		errors.Is(err, driver.ErrBadConn),
		errors.As(err, &ne), errors.As(err, &ce):
		return true
	case errors.As(err, &pe):
		// Class 08 connection exceptions; 57P01-57P03 admin shutdown, crash
		// shutdown, cannot connect now (starting up).
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	s := err.Error()
	return strings.Contains(s, "conn closed") || strings.Contains(s, "connection refused") ||
		strings.Contains(s, "unexpected EOF") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "connection reset") || pgconn.Timeout(err)
}

// Hot runs the few fixed statements every request needs (the backend's list
// and create) through pgx's own API, as prepared statements while it can:
// Postgres then parses and plans each once per connection instead of once per
// request (BenchmarkListPath in backend/internal/todo; gatebench list50
// shows Postgres's CPU per request).
//
// A prepared statement outlives its transaction, which PgBouncer's
// transaction pooling cannot keep (before 1.21's max_prepared_statements):
// the statement is prepared on one server connection and run on another
// ("prepared statement … does not exist", 26000) or meets another client's
// ("… already exists", 42P05). Either error means the statement did not run,
// so Hot reruns it with the simple protocol and uses that from then on,
// logging once. pgx names a statement after its SQL text, so a statement
// found on a shared server connection is always the same statement. Hot is
// never used inside a transaction.
type Hot struct {
	db           *bun.DB
	log          *zap.Logger
	prepare      atomic.Bool
	cacheChecked sync.Once // the pool's statement cache looked at (Run)
}

// NewHot returns a Hot over db; with prepare false every statement goes
// with the simple protocol from the start (DB_PREPARED_STATEMENTS=off).
func NewHot(db *bun.DB, prepare bool, log *zap.Logger) *Hot {
	h := &Hot{db: db, log: log}
	h.prepare.Store(prepare)
	return h
}

// Preparing reports whether statements are still prepared. The fallback is
// for the life of the process: one lost statement (behind a pooler, or a
// DEALLOCATE ALL by hand) turns preparing off until a restart.
func (h *Hot) Preparing() bool { return h.prepare.Load() }

// Run calls fn on one of the pool's connections with the mode fn must pass
// as its query's first argument. fn may be called twice (after a pooler lost
// the statement), so it must start from scratch each time.
func (h *Hot) Run(ctx context.Context, fn func(c *pgx.Conn, mode pgx.QueryExecMode) error) error {
	return Native(ctx, h.db, func(c *pgx.Conn) error {
		// statement_cache_capacity=0 in DATABASE_URL leaves pgx no cache to
		// prepare into: it would refuse every statement. Every connection of
		// the pool has the same setting, and Config copies it: look once.
		h.cacheChecked.Do(func() {
			if c.Config().StatementCacheCapacity == 0 {
				h.prepare.Store(false)
			}
		})
		if !h.prepare.Load() {
			return fn(c, pgx.QueryExecModeSimpleProtocol)
		}
		err := fn(c, pgx.QueryExecModeCacheStatement)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "26000" && pe.Code != "42P05") {
			return err
		}
		if h.prepare.CompareAndSwap(true, false) {
			h.log.Warn("prepared statements do not survive between this service and Postgres (a pooler in transaction mode?): using the simple protocol from now on; DB_PREPARED_STATEMENTS=off says so from the start",
				zap.String("sqlstate", pe.Code))
		}
		return fn(c, pgx.QueryExecModeSimpleProtocol)
	})
}

// Native runs fn on one connection of db's pool as pgx's own *pgx.Conn, for
// the few queries that run on every request: there database/sql's scanning
// and bun's reflection cost more than Postgres (BenchmarkListPath in
// backend/internal/todo compares them). The connection is the
// pool's, with the pool's settings (the simple protocol unless DATABASE_URL
// names another default_query_exec_mode); fn must not keep it after
// returning. A connection fn leaves broken is closed by pgx and dropped by
// the pool.
func Native(ctx context.Context, db *bun.DB, fn func(*pgx.Conn) error) error {
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("pgdb: driver connection is %T, not pgx's", dc)
		}
		return fn(c.Conn())
	})
}
