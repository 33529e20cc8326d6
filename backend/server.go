package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/backend/internal/todo/migrations"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/logging"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/redisx"
)

// run is the whole program; main only calls it. It returns when ctx is
// cancelled or SIGINT/SIGTERM arrives, after a graceful shutdown.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stderr io.Writer) error {
	if len(args) > 0 && args[0] == "probe" {
		return probe(ctx, lookup, args[1:])
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(stderr, cfg.LogLevel, "backend")
	if err != nil {
		return err
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	db, err := pgdb.Open(cfg.DatabaseURL, pgdb.Options{MaxOpenConns: cfg.MaxDBConns})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pgdb.Migrate(ctx, db, migrations.FS, "backend", log); err != nil {
		return err
	}
	if len(args) > 0 {
		switch args[0] {
		case "migrate":
			return nil
		default:
			return fmt.Errorf("unknown command %q (want no arguments, migrate, or probe PATH)", args[0])
		}
	}

	lc := &httpx.Lifecycle{}
	metrics := httpx.NewMetrics("backend")
	if cfg.RedisURL != "" {
		rdb := cfg.Redis.NewClient(redisx.Options{})
		defer rdb.Close()
		go newUserEvents(rdb, cfg.RedisPrefix, todo.NewStore(db), log, metrics.Registry).run(ctx)
	} else {
		log.Warn("REDIS_URL is not set: todos of deleted users are not removed (authsvc's user.deleted events wait in Redis)")
	}

	handler := newServer(log, metrics, db, lc, cfg)
	sc := httpx.ServeConfig{
		Log:             log,
		Main:            httpx.NewServer(cfg.Addr, handler),
		Lifecycle:       lc,
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}
	if cfg.MetricsAddr != "" {
		sc.Metrics = httpx.NewServer(cfg.MetricsAddr, metrics.Handler())
	}
	return httpx.Serve(ctx, sc)
}

// newServer wires the API: routes inside, then the shared observation stack
// (request ID, access log, panic recovery, metrics) outside.
func newServer(log *zap.Logger, m *httpx.Metrics, db *bun.DB, lc *httpx.Lifecycle, cfg config) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, todo.NewStore(db), lc, func(ctx context.Context) error { return db.PingContext(ctx) }, cfg.RequestTimeout)
	return httpx.Observe(log, m, mux)
}

// storeError maps store and database errors to what a client may learn.
func storeError(err error) error {
	var te *todo.TitleError
	switch {
	case errors.Is(err, todo.ErrNotFound):
		return httpx.Errorf(http.StatusNotFound, "TODO_NOT_FOUND", "No todo with that id.")
	case errors.As(err, &te):
		return httpx.Errorf(http.StatusBadRequest, "INVALID_TITLE", upperFirst(te.Reason)+".")
	case pgdb.Unavailable(err), // includes a pooled connection found broken
		// The caller went away mid-query: nobody reads the answer, and it is
		// not an internal error worth logging (e2e TestReliabilitySlowBackend).
		errors.Is(err, context.Canceled):
		return httpx.ErrUnavailable
	}
	return err
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// probe is `backend probe /readyz`: GET the path on this container's own
// loopback listener and succeed only on 200. The kubelet cannot reach a
// loopback listener, and the image has no shell or curl, so the binary is its
// own exec probe.
func probe(ctx context.Context, lookup func(string) (string, bool), args []string) error {
	path := "/readyz"
	if len(args) > 0 {
		path = args[0]
	}
	if path != "/readyz" && path != "/healthz" {
		return fmt.Errorf("probe: want /readyz or /healthz, got %q", path)
	}
	addr, _ := lookup("BACKEND_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("probe: BACKEND_ADDR %q: want host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d", path, resp.StatusCode)
	}
	return nil
}
