// Package revoke keeps, in memory, the set of session ids whose access tokens
// must be refused before they expire (sign-out, "revoke all sessions"), and
// follows authsvc's announcements through Redis so that no request ever waits
// on Redis to learn it.
//
// # Protocol
//
// kit/wire's: the sorted set wire.RevokedKey(prefix) (member = session id,
// score = Unix seconds after which no token with that sid can be valid) and
// the channel wire.RevocationChannel(prefix), whose messages
// wire.ParseRevocation reads. authsvc/internal/revoke is the writer.
//
// A Follower subscribes first and then reads the whole set (ZRANGEBYSCORE key
// <now> +inf WITHSCORES), and reads it again on every (re)subscription
// confirmation, because messages published while it was disconnected are
// lost. Reads only ever add to the set (a revocation is never taken back), so
// a message and a reload can arrive in either order. Entries leave the set
// only when their expiry has passed, when every token carrying the sid has
// expired anyway.
//
// While Redis is unreachable the set stays as last known: tokens revoked
// before the outage stay refused, tokens revoked during it are refused once
// Redis is back (authsvc retries its writes) and, at worst, expire by TTL.
package revoke

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse.dev/kit/redisx"
	"gatehouse.dev/kit/wire"
)

// Defaults for Options left zero.
const (
	DefaultPruneEvery  = 30 * time.Second
	DefaultResyncEvery = time.Minute
	DefaultHealthEvery = time.Second
	DefaultCallTimeout = 2 * time.Second
)

// Options configure a Follower. Zero fields take the defaults.
type Options struct {
	// Prefix is the key prefix; "" means wire.DefaultRedisPrefix.
	Prefix string
	// PruneEvery is how often expired entries are dropped from memory.
	PruneEvery time.Duration
	// ResyncEvery is how often the whole set is re-read even without a
	// reconnect: a safety net for a message dropped by a slow consumer.
	ResyncEvery time.Duration
	// HealthEvery is how often Redis is pinged to notice an outage (the
	// subscription itself only reports when it is back).
	HealthEvery time.Duration
	// CallTimeout bounds one reload or ping.
	CallTimeout time.Duration
	// Log receives outage and recovery lines; nil means none.
	Log *zap.Logger
	// Observer hooks for metrics; any may be nil.
	OnReload       func(size int)   // after every successful full read
	OnSize         func(size int)   // whenever the in-memory set changes size
	OnSubscription func(up bool)    // subscription confirmed (true) or Redis lost (false)
	Now            func() time.Time // nil means time.Now
	// CloseClient makes Run close the Redis client when it returns.
	CloseClient bool
}

// Follower is the in-memory revoked-session set kept in step with Redis. It
// is safe for concurrent use; Revoked never touches the network. A nil
// *Follower revokes nothing (revocation disabled: REDIS_URL empty).
type Follower struct {
	rdb     redis.UniversalClient
	key, ch string
	opt     Options

	mu       sync.RWMutex
	sids     map[string]int64                  // sid → expiry, Unix seconds
	watchers map[string]map[chan struct{}]bool // sid → channels to close on revocation

	up       atomic.Bool
	loaded   chan struct{} // closed after the first full read
	loadOnce sync.Once
}

// New returns a Follower reading through rdb. Call Run to start following.
func New(rdb redis.UniversalClient, opt Options) *Follower {
	if opt.Prefix == "" {
		opt.Prefix = wire.DefaultRedisPrefix
	}
	if opt.PruneEvery <= 0 {
		opt.PruneEvery = DefaultPruneEvery
	}
	if opt.ResyncEvery <= 0 {
		opt.ResyncEvery = DefaultResyncEvery
	}
	if opt.HealthEvery <= 0 {
		opt.HealthEvery = DefaultHealthEvery
	}
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = DefaultCallTimeout
	}
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Follower{rdb: rdb, key: wire.RevokedKey(opt.Prefix), ch: wire.RevocationChannel(opt.Prefix), opt: opt, sids: map[string]int64{}, loaded: make(chan struct{})}
}

// Revoked reports whether tokens carrying sid must be refused. The empty sid
// (a token without the claim) is never revoked.
func (f *Follower) Revoked(sid string) bool {
	if f == nil || sid == "" {
		return false
	}
	f.mu.RLock()
	_, ok := f.sids[sid]
	f.mu.RUnlock()
	return ok
}

// Len is the number of sessions held as revoked.
func (f *Follower) Len() int {
	if f == nil {
		return 0
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.sids)
}

// Loaded is closed once the set has been read from Redis for the first time.
// For a nil Follower it is never closed.
func (f *Follower) Loaded() <-chan struct{} {
	if f == nil {
		return nil
	}
	return f.loaded
}

// SubscriptionUp reports whether the set is in step with Redis: subscribed,
// read in full since, and Redis answered the last health check.
func (f *Follower) SubscriptionUp() bool { return f != nil && f.up.Load() }

// add records sid as revoked until exp (keeping the later expiry) unless exp
// has already passed. It reports whether the set grew.
func (f *Follower) add(sid string, exp, now int64) bool {
	if sid == "" || exp <= now {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.sids[sid]
	if !ok || exp > old {
		f.sids[sid] = exp
	}
	if !ok {
		for ch := range f.watchers[sid] {
			close(ch)
		}
		delete(f.watchers, sid)
	}
	return !ok
}

// Watch returns a channel that is closed once sid is revoked (at once when
// it already is), for connections that outlive a request's token check:
// a WebSocket tunnel is cut when its session ends. stop releases the watch;
// call it when the connection ends. A nil Follower and the empty sid
// return a nil channel, which never fires.
func (f *Follower) Watch(sid string) (revoked <-chan struct{}, stop func()) {
	if f == nil || sid == "" {
		return nil, func() {}
	}
	ch := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sids[sid]; ok {
		close(ch)
		return ch, func() {}
	}
	if f.watchers == nil {
		f.watchers = map[string]map[chan struct{}]bool{}
	}
	if f.watchers[sid] == nil {
		f.watchers[sid] = map[chan struct{}]bool{}
	}
	f.watchers[sid][ch] = true
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if w := f.watchers[sid]; w[ch] {
			delete(w, ch)
			if len(w) == 0 {
				delete(f.watchers, sid)
			}
		}
	}
}

// prune drops entries whose expiry has passed.
func (f *Follower) prune() {
	now := f.opt.Now().Unix()
	f.mu.Lock()
	n := len(f.sids)
	for sid, exp := range f.sids {
		if exp <= now {
			delete(f.sids, sid)
		}
	}
	changed := len(f.sids) != n
	f.mu.Unlock()
	if changed {
		f.reportSize()
	}
}

func (f *Follower) reportSize() {
	if f.opt.OnSize != nil {
		f.opt.OnSize(f.Len())
	}
}

// reload reads every live entry of the sorted set into memory.
func (f *Follower) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.opt.CallTimeout)
	defer cancel()
	now := f.opt.Now().Unix()
	zs, err := f.rdb.ZRangeByScoreWithScores(ctx, f.key, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now, 10), Max: "+inf",
	}).Result()
	if err != nil {
		return err
	}
	for _, z := range zs {
		sid, _ := z.Member.(string)
		f.add(sid, int64(z.Score), now)
	}
	f.reportSize()
	if f.opt.OnReload != nil {
		f.opt.OnReload(len(zs))
	}
	f.loadOnce.Do(func() { close(f.loaded) })
	return nil
}

// apply handles one pub/sub payload.
func (f *Follower) apply(payload string) error {
	sid, exp, err := wire.ParseRevocation(payload)
	if err != nil {
		return err
	}
	if f.add(sid, exp, f.opt.Now().Unix()) {
		f.reportSize()
	}
	return nil
}

func (f *Follower) setUp(up bool) {
	f.up.Store(up)
	if f.opt.OnSubscription != nil {
		f.opt.OnSubscription(up)
	}
}

// Run follows the channel until ctx ends. go-redis's PubSub reconnects and
// resubscribes by itself (pinging the connection to notice a dead one); every
// subscription confirmation it delivers triggers a full reload, retried each
// HealthEvery until it succeeds.
func (f *Follower) Run(ctx context.Context) {
	if f == nil {
		return
	}
	if f.opt.CloseClient {
		defer f.rdb.Close()
	}
	f.setUp(false)
	f.reportSize()
	ps := f.rdb.Subscribe(ctx, f.ch)
	defer ps.Close()
	msgs := ps.ChannelWithSubscriptions(
		redis.WithChannelHealthCheckInterval(max(f.opt.HealthEvery, 100*time.Millisecond)),
		redis.WithChannelSize(1024),
	)
	prune := time.NewTicker(f.opt.PruneEvery)
	defer prune.Stop()
	resync := time.NewTicker(f.opt.ResyncEvery)
	defer resync.Stop()
	health := time.NewTicker(f.opt.HealthEvery)
	defer health.Stop()

	needReload := false
	lost := false // logged the outage once
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					needReload = true
				}
			case *redis.Message:
				if err := f.apply(m.Payload); err != nil {
					f.opt.Log.Warn("revocation: ignoring a malformed message", zap.Error(err))
				}
			}
		case <-prune.C:
			f.prune()
		case <-resync.C:
			needReload = true
		case <-health.C:
			pctx, cancel := context.WithTimeout(ctx, f.opt.CallTimeout)
			err := f.rdb.Ping(pctx).Err()
			cancel()
			if err != nil && ctx.Err() == nil {
				if !lost {
					f.opt.Log.Warn("revocation: Redis unreachable; keeping the last known revoked sessions", zap.Error(err))
					lost = true
				}
				if f.up.Load() {
					f.setUp(false)
				}
				// Read everything again once Redis answers, even if the
				// subscription itself survived the blip.
				needReload = true
			}
		}
		if needReload && ctx.Err() == nil {
			if err := f.reload(ctx); err != nil {
				if !lost {
					f.opt.Log.Warn("revocation: cannot read the revoked sessions; retrying", zap.Error(err))
					lost = true
				}
				continue // retried on the next tick
			}
			needReload = false
			if lost {
				f.opt.Log.Info("revocation: following Redis again", zap.Int("revoked_sessions", f.Len()))
				lost = false
			}
			if !f.up.Load() {
				f.setUp(true)
			}
		}
	}
}

// NewClient returns a go-redis client for c (kit/redisx) sized for a
// Follower: a separate pool from the rate limiter's (whose 100 ms budget is
// too tight for reading a large set), short dials, no retries (Run retries).
// On a Cluster the subscription is plain SUBSCRIBE, which Redis Cluster
// broadcasts to every node, so a follower hears authsvc's PUBLISH whichever
// node either of them is connected to; through Sentinel, go-redis dials the
// current master on every reconnect, so the subscription moves with a
// failover.
func NewClient(c *redisx.Config) redis.UniversalClient {
	return c.NewClient(redisx.Options{
		DialTimeout: time.Second, ReadTimeout: DefaultCallTimeout, WriteTimeout: DefaultCallTimeout, PoolSize: 4,
	})
}
