package testenv

import (
	"os"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
)

// topologyDir installs the "distributed" package set and makes a throwaway
// directory removed when the test ends.
func topologyDir(t testing.TB, kind string) string {
	t.Helper()
	if err := devenv.Install(devenv.TestPackages["distributed"]...); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir, err := TempDir(kind)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Servers run as an unprivileged user in subdirectories.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// NewTLSRedis starts a redis-server that speaks only TLS, with a certificate
// from a CA made for this test, and stops it when the test ends.
func NewTLSRedis(t testing.TB) (*devenv.Redis, TLSFiles) {
	t.Helper()
	dir := topologyDir(t, "redis-tls")
	files := NewTLSFiles(t, dir)
	r, err := devenv.StartRedis(devenv.RedisOptions{Dir: dir + "/server", TLS: &devenv.RedisTLS{
		CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CAFile}})
	if err != nil {
		t.Fatalf("testenv: TLS Redis: %v", err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return r, files
}

// NewSentinelGroup starts a master, one replica and three sentinels
// (down-after-milliseconds = downAfter) and stops them when the test ends.
func NewSentinelGroup(t testing.TB, downAfter time.Duration) *devenv.SentinelGroup {
	t.Helper()
	dir := topologyDir(t, "redis-sentinel")
	g, err := devenv.StartSentinelGroup(dir, "gatehouse", 1, 3, downAfter)
	if err != nil {
		t.Fatalf("testenv: Redis Sentinel: %v", err)
	}
	t.Cleanup(g.Stop)
	return g
}

// NewRedisCluster starts a Redis Cluster of n masters and stops it when the
// test ends.
func NewRedisCluster(t testing.TB, n int) *devenv.RedisCluster {
	t.Helper()
	dir := topologyDir(t, "redis-cluster")
	c, err := devenv.StartRedisCluster(dir, n)
	if err != nil {
		t.Fatalf("testenv: Redis Cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// NewPgBouncer starts pgbouncer in transaction pooling mode (pool size
// poolSize; 0 means 20) in front of pg and stops it when the test ends.
func NewPgBouncer(t testing.TB, pg *devenv.Postgres, poolSize int) *devenv.PgBouncer {
	t.Helper()
	dir := topologyDir(t, "pgbouncer")
	b, err := devenv.StartPgBouncer(pg, devenv.PgBouncerOptions{Dir: dir + "/bouncer", PoolSize: poolSize})
	if err != nil {
		t.Fatalf("testenv: PgBouncer: %v", err)
	}
	t.Cleanup(b.Stop)
	return b
}

// NewPostgresPair starts a durable primary (fsync and synchronous_commit on)
// and a streaming standby of it, synchronous when sync is set, and stops
// both when the test ends.
func NewPostgresPair(t testing.TB, sync bool) (primary, standby *devenv.Postgres) {
	t.Helper()
	dir := topologyDir(t, "pg-pair")
	primary, err := devenv.StartPostgres(devenv.PostgresOptions{Dir: dir + "/primary", Durable: true})
	if err != nil {
		t.Fatalf("testenv: Postgres primary: %v", err)
	}
	t.Cleanup(func() { _ = primary.Stop() })
	standby, err = primary.StartStandby(dir + "/standby")
	if err != nil {
		t.Fatalf("testenv: Postgres standby: %v", err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	if err := primary.SetSynchronous(sync); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return primary, standby
}
