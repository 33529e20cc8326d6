package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/backend/internal/todo/migrations"
	"gatehouse.dev/kit/gcdefault"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/logging"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/redisx"
)

// deps are what the backend's handlers use, built once by run.
type deps struct {
	todos   *todo.Store                 // the only way to the todos: per-user views
	ping    func(context.Context) error // /readyz: the database answers
	lc      *httpx.Lifecycle
	timeout time.Duration // REQUEST_TIMEOUT: per-request bound on database work
}

func newDeps(db *bun.DB, hot *pgdb.Hot, timeout time.Duration) *deps {
	return &deps{todos: todo.NewStore(db, hot), ping: db.PingContext, lc: &httpx.Lifecycle{}, timeout: timeout}
}

// backendGOGC is the backend's GOGC unless the environment sets one. Its
// live heap is small (no caches; a request's rows and JSON), so with Go's
// 100 the collector runs every few megabytes of allocation, many times a
// second under load, each cycle waking its workers; 400 trades a few
// megabytes of heap for far fewer cycles (measure: gatebench -rows list50
// -backend-env GOGC=100). In a container the soft memory limit still makes
// the collector work harder near the limit.
const backendGOGC = 400

// run is the whole program; main only calls it, with the process's
// arguments (without the program name), environment, and output. It serves
// until ctx ends (main cancels it on SIGINT or SIGTERM), then drains and
// shuts down gracefully. Logs go to stderr; nothing is written to stdout.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "probe":
		return probe(ctx, lookup, args[1:])
	case "", "migrate":
	default:
		return fmt.Errorf("unknown command %q (want no arguments, migrate, or probe PATH)", cmd)
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(stderr, cfg.LogLevel, "backend")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if cmd == "" {
		// Zero fields were left to the runtime (GOGC or GOMEMLIMIT set, or no cgroup limit).
		gc := gcdefault.Apply(lookup, os.ReadFile, backendGOGC)
		log.Info("garbage collector defaults", zap.Int("gogc_set", gc.GOGC), zap.Int64("soft_memory_limit_set", gc.MemoryLimit))
	}

	db, err := pgdb.Open(cfg.DatabaseURL, pgdb.Options{MaxOpenConns: cfg.MaxDBConns})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pgdb.Migrate(ctx, db, migrations.FS, "backend", log); err != nil {
		return err
	}
	if cmd == "migrate" {
		return nil
	}

	d := newDeps(db, pgdb.NewHot(db, cfg.PreparedStatements, log), cfg.RequestTimeout)
	metrics := httpx.NewMetrics("backend")
	if cfg.Redis != nil {
		rdb := cfg.Redis.NewClient(redisx.Options{})
		defer rdb.Close()
		go newUserEvents(rdb, cfg.RedisPrefix, d.todos, log, metrics.Registry).run(ctx)
	} else {
		log.Warn("REDIS_URL is not set: todos of deleted users are not removed (authsvc's user.deleted events wait in Redis)")
	}
	return serve(ctx, cfg, log, metrics, d)
}
