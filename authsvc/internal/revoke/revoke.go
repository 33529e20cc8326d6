// Package revoke tells proxies, through Redis, that a session has ended, so
// they reject its access tokens (JWTs) at once instead of until they expire.
//
// # Protocol
//
// The key, channel and message are kit/wire's (the proxy reads them through
// the same package). A revocation's expiry is the revocation time + JWT_TTL
// + Margin: after it no JWT carrying the sid can still be valid. Every write
// is one MULTI/EXEC round trip: ZADD key <exp> <sid> [<exp> <sid> ...];
// ZREMRANGEBYSCORE key -inf <now> (pruning entries whose tokens have all
// expired); PUBLISH channel wire.FormatRevocation(sid, exp) for each sid,
// after the ZADD.
//
// A revocation that cannot be written (Redis down) is kept in a bounded
// in-memory queue and retried every second until its expiry passes, when it
// no longer matters; it is lost if this process exits first. Sign-out itself
// never waits for more than one short attempt.
package revoke

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/wire"
)

// Margin is added to the access-token lifetime to get a revocation's expiry:
// it covers the proxies' leeway (30 s) and clock skew between hosts.
const Margin = 60 * time.Second

// Observer receives counts for metrics; any field may be nil.
type Observer struct {
	Published func(n int) // revocations written to Redis
	Failed    func(n int) // revocations whose first write failed (now queued)
	Dropped   func(n int) // queued revocations given up (expired, or queue full)
	// Retried is called after each background attempt with its error (nil on success).
	Retried func(n int, err error)
}

// Options configure a Publisher.
type Options struct {
	Prefix   string        // key prefix; "" means wire.DefaultRedisPrefix
	TokenTTL time.Duration // JWT_TTL; revocations last TokenTTL + Margin
	// MaxQueue bounds revocations held for retry; 0 means 10,000. When full,
	// the oldest (closest to expiring anyway) is dropped.
	MaxQueue int
	// RetryEvery is the background retry period; 0 means one second.
	RetryEvery time.Duration
	Observer   Observer
}

// Publisher writes revocations to Redis. A nil *Publisher is valid and
// publishes nothing (revocation disabled: REDIS_URL unset).
type Publisher struct {
	rdb     redis.UniversalClient
	key, ch string
	ttl     time.Duration
	max     int
	every   time.Duration
	obs     Observer
	now     func() time.Time

	mu      sync.Mutex
	pending []entry // oldest first
}

type entry struct {
	sid string
	exp int64
}

// New returns a Publisher writing through rdb.
func New(rdb redis.UniversalClient, opt Options) *Publisher {
	if opt.Prefix == "" {
		opt.Prefix = wire.DefaultRedisPrefix
	}
	if opt.MaxQueue <= 0 {
		opt.MaxQueue = 10000
	}
	if opt.RetryEvery <= 0 {
		opt.RetryEvery = time.Second
	}
	return &Publisher{
		rdb: rdb, key: wire.RevokedKey(opt.Prefix), ch: wire.RevocationChannel(opt.Prefix), ttl: opt.TokenTTL + Margin,
		max: opt.MaxQueue, every: opt.RetryEvery, obs: opt.Observer, now: time.Now,
	}
}

// Revoke publishes the end of the sessions sids (empty ids are ignored). On
// failure it returns the error and queues them for the background retry
// (Run), so the caller may report success to its user regardless.
func (p *Publisher) Revoke(ctx context.Context, sids ...string) error {
	if p == nil {
		return nil
	}
	exp := p.now().Add(p.ttl).Unix()
	es := make([]entry, 0, len(sids))
	for _, s := range sids {
		if s != "" {
			es = append(es, entry{sid: s, exp: exp})
		}
	}
	if len(es) == 0 {
		return nil
	}
	err := p.write(ctx, es)
	if err == nil {
		call(p.obs.Published, len(es))
		return nil
	}
	call(p.obs.Failed, len(es))
	p.enqueue(es)
	return err
}

// Pending is the number of revocations waiting for a retry.
func (p *Publisher) Pending() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// Run retries queued revocations every RetryEvery until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	if p == nil {
		return
	}
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.retry(ctx)
		}
	}
}

// retry makes one attempt at everything queued that has not yet expired.
func (p *Publisher) retry(ctx context.Context) {
	now := p.now().Unix()
	p.mu.Lock()
	var live []entry
	dropped := 0
	for _, e := range p.pending {
		if e.exp > now {
			live = append(live, e)
		} else {
			dropped++
		}
	}
	p.pending = nil
	p.mu.Unlock()
	call(p.obs.Dropped, dropped)
	if len(live) == 0 {
		return
	}
	err := p.write(ctx, live)
	if p.obs.Retried != nil {
		p.obs.Retried(len(live), err)
	}
	if err != nil {
		p.enqueue(live)
		return
	}
	call(p.obs.Published, len(live))
}

func (p *Publisher) enqueue(es []entry) {
	p.mu.Lock()
	p.pending = append(p.pending, es...)
	over := len(p.pending) - p.max
	if over > 0 {
		p.pending = append([]entry(nil), p.pending[over:]...)
	}
	p.mu.Unlock()
	if over > 0 {
		call(p.obs.Dropped, over)
	}
}

// write is the protocol's single round trip (see the package comment).
func (p *Publisher) write(ctx context.Context, es []entry) error {
	z := make([]redis.Z, len(es))
	for i, e := range es {
		z[i] = redis.Z{Score: float64(e.exp), Member: e.sid}
	}
	now := strconv.FormatInt(p.now().Unix(), 10)
	_, err := p.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.ZAdd(ctx, p.key, z...)
		tx.ZRemRangeByScore(ctx, p.key, "-inf", now)
		for _, e := range es {
			tx.Publish(ctx, p.ch, wire.FormatRevocation(e.sid, e.exp))
		}
		return nil
	})
	if err != nil {
		return errors.Join(errors.New("revoke: writing to Redis"), err)
	}
	return nil
}

func call(f func(int), n int) {
	if f != nil && n > 0 {
		f(n)
	}
}
