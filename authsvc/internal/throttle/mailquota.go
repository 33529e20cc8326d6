package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MailQuota bounds how many password-reset and verification mails go out
// per recipient and per client IP in a window (no mail bombing, issue 16).
//
// Counters are fixed windows in Redis,
//
//	<prefix>mail_quota:email:<hex SHA-256 of the lower-cased email>
//	<prefix>mail_quota:ip:<address, IPv6 by /64>
//
// created with the window as TTL on the first request and incremented by
// every request, whether or not the email belongs to an account, so the
// answer reveals nothing about which addresses exist. When Redis cannot be
// reached (or is not configured) the same counts are kept in this process:
// the limit still holds per replica, so an outage fails closed on mail
// bombing without stopping resets altogether.
type MailQuota struct {
	rdb             redis.UniversalClient // nil: in-process only
	prefix          string
	perEmail, perIP int
	window          time.Duration

	mu    sync.Mutex
	local map[string]localCount
	now   func() time.Time
}

type localCount struct {
	n     int
	reset time.Time
}

// maxLocal bounds the in-process table; when it is full of live entries a
// new key is refused (fail closed) until entries expire.
const maxLocal = 100_000

// NewMailQuota returns a quota of perEmail and perIP mails per window.
// rdb may be nil.
func NewMailQuota(rdb redis.UniversalClient, prefix string, perEmail, perIP int, window time.Duration) *MailQuota {
	if prefix == "" {
		prefix = "gatehouse:"
	}
	return &MailQuota{rdb: rdb, prefix: prefix, perEmail: perEmail, perIP: perIP, window: window,
		local: map[string]localCount{}, now: time.Now}
}

// Take counts one mail to email requested from ip. It reports whether both
// counts are within their limits and, if not, how long until the fuller one
// resets. fallback is true when Redis failed and the in-process counts
// decided (the caller logs it).
func (q *MailQuota) Take(ctx context.Context, email, ip string) (ok bool, retry time.Duration, fallback bool) {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	keys := []string{q.prefix + "mail_quota:email:" + hex.EncodeToString(h[:])}
	limits := []int{q.perEmail}
	if ip = ipKey(ip); ip != "" {
		keys = append(keys, q.prefix+"mail_quota:ip:"+ip)
		limits = append(limits, q.perIP)
	}
	counts, ttls, err := q.incrRedis(ctx, keys)
	if err != nil || q.rdb == nil {
		counts, ttls = q.incrLocal(keys)
		fallback = q.rdb != nil
	}
	ok = true
	for i := range keys {
		if counts[i] > limits[i] {
			ok = false
			retry = max(retry, ttls[i])
		}
	}
	return ok, retry, fallback
}

func (q *MailQuota) incrRedis(ctx context.Context, keys []string) ([]int, []time.Duration, error) {
	if q.rdb == nil {
		return nil, nil, nil
	}
	incrs := make([]*redis.IntCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.SetNX(ctx, k, 0, q.window) // starts the window on the first request
			incrs[i] = p.Incr(ctx, k)
			ttls[i] = p.PTTL(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	counts := make([]int, len(keys))
	durs := make([]time.Duration, len(keys))
	for i := range keys {
		counts[i], durs[i] = int(incrs[i].Val()), max(ttls[i].Val(), time.Second)
	}
	return counts, durs, nil
}

func (q *MailQuota) incrLocal(keys []string) ([]int, []time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	counts := make([]int, len(keys))
	durs := make([]time.Duration, len(keys))
	for i, k := range keys {
		c, ok := q.local[k]
		if !ok || !now.Before(c.reset) {
			if len(q.local) >= maxLocal {
				q.prune(now)
			}
			if len(q.local) >= maxLocal {
				counts[i], durs[i] = int(^uint(0)>>1), q.window // full: refuse
				continue
			}
			c = localCount{reset: now.Add(q.window)}
		}
		c.n++
		q.local[k] = c
		counts[i], durs[i] = c.n, c.reset.Sub(now)
	}
	return counts, durs
}

func (q *MailQuota) prune(now time.Time) {
	for k, c := range q.local {
		if !now.Before(c.reset) {
			delete(q.local, k)
		}
	}
}

// ipKey normalises a client address: IPv6 by its /64 (one host usually
// holds the whole prefix), IPv4 as is; "" for anything unparsable.
func ipKey(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
