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

	conn, err := db.Conn(ctx) // advisory locks belong to a session: hold one connection
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", key); err != nil {
		return fmt.Errorf("migrate: advisory lock: %w", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", key)
	}()

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
