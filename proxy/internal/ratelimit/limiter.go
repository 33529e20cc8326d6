package ratelimit

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse.dev/kit/redisx"
)

// Defaults for Limiter fields left zero.
const (
	DefaultCallTimeout    = 100 * time.Millisecond
	DefaultHealthInterval = time.Second
	DefaultPrefix         = "rl:"
)

// Limiter limits in Redis and falls back to an in-process Memory limiter when
// Redis fails, logging the switch and reporting it through OnBackend; a health
// check returns it to Redis when Redis answers PING again. Set the fields
// before the first Allow; Run drives the health check.
type Limiter struct {
	// Prefix is prepended to every key (tests use a per-test prefix).
	Prefix string
	// CallTimeout bounds one Redis call, so a dead Redis adds at most this
	// much latency to the request that discovers it.
	CallTimeout time.Duration
	// HealthInterval is how often Redis is pinged while in fallback.
	HealthInterval time.Duration
	// Log receives the switch lines; nil means no logging.
	Log *zap.Logger
	// OnBackend, if set, is called with the backend in use at start and at
	// every switch.
	OnBackend func(Backend)

	rdb     redis.UniversalClient
	rl      *redis_rate.Limiter
	mem     *Memory
	onRedis atomic.Bool
}

// New returns a Limiter over rdb (one server, Sentinel's master or a
// Cluster: every bucket is one key, so one slot); with rdb nil it limits in
// process only.
func New(rdb redis.UniversalClient) *Limiter {
	l := &Limiter{rdb: rdb, mem: NewMemory(0)}
	if rdb != nil {
		l.rl = redis_rate.NewLimiter(rdb)
		l.onRedis.Store(true)
	}
	return l
}

// Backend is the store in use now.
func (l *Limiter) Backend() Backend {
	if l.onRedis.Load() {
		return BackendRedis
	}
	return BackendMemory
}

func (l *Limiter) log() *zap.Logger {
	if l.Log == nil {
		return zap.NewNop()
	}
	return l.Log
}

func (l *Limiter) report() {
	if l.OnBackend != nil {
		l.OnBackend(l.Backend())
	}
}

// Allow takes one request from key's bucket under lim. It never fails: when
// Redis does, the in-process limiter answers.
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) Result {
	if l.onRedis.Load() {
		timeout := l.CallTimeout
		if timeout <= 0 {
			timeout = DefaultCallTimeout
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := l.rl.Allow(cctx, l.prefix()+key, redis_rate.Limit{Rate: lim.Rate, Burst: lim.Rate, Period: lim.Period})
		cancel()
		if err == nil {
			return Result{
				Allowed: res.Allowed > 0, Limit: lim, Remaining: res.Remaining,
				RetryAfter: res.RetryAfter, ResetAfter: res.ResetAfter, Backend: BackendRedis,
			}
		}
		if ctx.Err() == nil { // not merely our client hanging up
			l.fallBack(err)
		}
	}
	return l.mem.Allow(l.prefix()+key, lim)
}

func (l *Limiter) prefix() string {
	if l.Prefix == "" {
		return DefaultPrefix
	}
	return l.Prefix
}

func (l *Limiter) fallBack(err error) {
	if l.onRedis.CompareAndSwap(true, false) {
		l.log().Warn("rate limiter: Redis unavailable, limiting in process until it is back", zap.Error(err))
		l.report()
	}
}

// Run reports the initial backend, then, until ctx ends, pings Redis while in
// fallback and switches back when it answers. It also sweeps idle in-process
// buckets. It returns when ctx is done.
func (l *Limiter) Run(ctx context.Context) {
	l.report()
	every := l.HealthInterval
	if every <= 0 {
		every = DefaultHealthInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			l.mem.Sweep()
			continue
		case <-t.C:
		}
		if l.rdb == nil || l.onRedis.Load() {
			continue
		}
		if err := l.ping(ctx); err == nil {
			if l.onRedis.CompareAndSwap(false, true) {
				l.log().Info("rate limiter: Redis is back, limiting in Redis again")
				l.report()
			}
		}
	}
}

// Ping checks Redis with the call timeout's budget (at least 250ms, a ping
// on a fresh connection includes the dial).
func (l *Limiter) ping(ctx context.Context) error {
	d := max(l.CallTimeout*2, 250*time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if l.rdb == nil {
		return errors.New("no Redis configured")
	}
	return l.rdb.Ping(cctx).Err()
}

// Warm opens the client's connections before the first request needs them,
// within d: on a Cluster the first call also loads the slot map, and neither
// should eat a request's CallTimeout (a miss means a needless switch to the
// in-process limiter). Errors are ignored: a dead Redis is the limiter's
// business at the first request.
func Warm(ctx context.Context, rdb redis.UniversalClient, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
		return
	}
	_ = rdb.Ping(ctx).Err()
}

// NewClient returns a go-redis client for c (kit/redisx) tuned for the
// limiter: no retries and short dial/read/write timeouts, so a dead Redis
// costs one short wait and then the in-process fallback.
func NewClient(c *redisx.Config, callTimeout time.Duration) redis.UniversalClient {
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	return c.NewClient(redisx.Options{
		DialTimeout: max(2*callTimeout, 200*time.Millisecond),
		ReadTimeout: callTimeout, WriteTimeout: callTimeout, PoolTimeout: callTimeout,
	})
}
