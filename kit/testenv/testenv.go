// Package testenv gives tests real Postgres and Redis servers. Under `make test`
// one pair is started for the whole run by cmd/devenv and handed over in
// GATEHOUSE_TEST_POSTGRES_URL and GATEHOUSE_TEST_REDIS_ADDR; a plain `go test`
// starts a private pair for the test binary instead. Either way a test that
// cannot get its server fails with the reason: it never skips.
//
// Packages that use it call testenv.Main from TestMain so private servers are
// stopped when the binary exits.
package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse.dev/kit/devenv"
)

// Variables through which a parent process hands servers to tests.
const (
	EnvPostgresURL = "GATEHOUSE_TEST_POSTGRES_URL"
	EnvRedisAddr   = "GATEHOUSE_TEST_REDIS_ADDR"
)

var (
	mu       sync.Mutex
	started  []func()
	pgURL    string
	pgErr    error
	pgOnce   sync.Once
	rdAddr   string
	rdErr    error
	rdOnce   sync.Once
	dbSeq    atomic.Int64
	sweepOne sync.Once
)

// Main runs the tests, then stops every server this process started.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops the servers this process started and removes their files.
func StopAll() {
	mu.Lock()
	fns := started
	started = nil
	mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func onStop(f func()) {
	mu.Lock()
	started = append(started, f)
	mu.Unlock()
}

// TempDir makes a throwaway directory that a later run can sweep if this
// process dies before removing it.
func TempDir(kind string) (string, error) {
	sweepOne.Do(func() { devenv.SweepStale(filepath.Join(os.TempDir(), "gatehouse-test-*")) })
	dir, err := os.MkdirTemp("", "gatehouse-test-"+kind+"-")
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(fmt.Sprint(os.Getpid())), 0o644)
}

// BuildDir makes a throwaway directory for binaries a test package builds
// once and shares between its tests. It is removed when the test binary
// exits through Main (pass or fail), and by the next run's sweep when the
// binary was killed (issue 12: every make test left ~120 MB of builds in
// the system temp folder).
func BuildDir(kind string) (string, error) {
	dir, err := TempDir("bin-" + kind)
	if err != nil {
		return "", err
	}
	onStop(func() { _ = os.RemoveAll(dir) })
	return dir, nil
}

// StartPostgres starts a private server in a throwaway directory; the
// returned stop function stops it and removes the directory.
func StartPostgres() (*devenv.Postgres, func(), error) {
	if err := devenv.EnsureInstalled(); err != nil {
		return nil, nil, err
	}
	dir, err := TempDir("pg")
	if err != nil {
		return nil, nil, err
	}
	pg, err := devenv.StartPostgres(devenv.PostgresOptions{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return pg, func() { _ = pg.Stop(); _ = os.RemoveAll(dir) }, nil
}

// StartRedis starts a private redis-server in a throwaway directory.
func StartRedis() (*devenv.Redis, func(), error) {
	if err := devenv.EnsureInstalled(); err != nil {
		return nil, nil, err
	}
	dir, err := TempDir("redis")
	if err != nil {
		return nil, nil, err
	}
	r, err := devenv.StartRedis(devenv.RedisOptions{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return r, func() { _ = r.Stop(); _ = os.RemoveAll(dir) }, nil
}

// PostgresURL returns the URL (database "postgres", superuser) of the shared
// server for this run, starting a private one on first use.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		if u := os.Getenv(EnvPostgresURL); u != "" {
			pgURL = u
			return
		}
		pg, stop, err := StartPostgres()
		if err != nil {
			pgErr = err
			return
		}
		onStop(stop)
		pgURL = pg.URL("postgres")
	})
	if pgErr != nil {
		t.Fatalf("testenv: cannot start Postgres: %v", pgErr)
	}
	return pgURL
}

// Database creates an empty database for this test on the shared server,
// drops it when the test ends, and returns its URL. Tests using it may run in
// parallel.
func Database(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect to Postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: drop database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// RedisAddr returns host:port of the shared Redis for this run, starting a
// private one on first use. Tests keep apart with per-test key prefixes.
func RedisAddr(t testing.TB) string {
	t.Helper()
	rdOnce.Do(func() {
		if a := os.Getenv(EnvRedisAddr); a != "" {
			rdAddr = a
			return
		}
		r, stop, err := StartRedis()
		if err != nil {
			rdErr = err
			return
		}
		onStop(stop)
		rdAddr = r.Addr()
	})
	if rdErr != nil {
		t.Fatalf("testenv: cannot start Redis: %v", rdErr)
	}
	return rdAddr
}

// NewPostgres starts a dedicated server that the test may stop and restart;
// it is stopped and removed when the test ends.
func NewPostgres(t testing.TB) *devenv.Postgres {
	t.Helper()
	pg, stop, err := StartPostgres()
	if err != nil {
		t.Fatalf("testenv: cannot start Postgres: %v", err)
	}
	t.Cleanup(stop)
	return pg
}

// NewRedis starts a dedicated redis-server that the test may stop and
// restart; it is stopped and removed when the test ends.
func NewRedis(t testing.TB) *devenv.Redis {
	t.Helper()
	r, stop, err := StartRedis()
	if err != nil {
		t.Fatalf("testenv: cannot start Redis: %v", err)
	}
	t.Cleanup(stop)
	return r
}
