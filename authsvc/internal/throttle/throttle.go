// Package throttle slows password guessing against one account, wherever
// the guesses come from (the proxy's per-IP limit cannot see a botnet).
//
// Each sign-in attempt for an email increments a counter in Redis,
//
//	<prefix>signin_fail:<hex SHA-256 of the lower-cased email>
//
// (INCR, then EXPIRE Window, so the count forgets Window after the last
// attempt), and a successful sign-in deletes it. Counting the attempt
// before the password check, rather than the failure after it, means
// parallel guesses each see a higher count: they cannot all slip in at the
// same small delay. Once Free attempts have failed, every further attempt
// waits Base × 2^(failures−Free), at most Max, before its password check.
// It is a delay, never a lock-out, so nobody can lock a victim out of their
// account by failing on purpose; the victim only waits up to Max.
//
// Unknown emails are counted exactly like real accounts: the key is derived
// from the email alone, so the delay reveals nothing about which exist.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/wire"
)

// Options tune the throttle. Zero values take the defaults noted.
type Options struct {
	Prefix string        // key prefix; default wire.DefaultRedisPrefix
	Free   int           // failures allowed without delay; default 5
	Base   time.Duration // first delay; default 250ms
	Max    time.Duration // delay cap; default 8s
	Window time.Duration // the count expires this long after the last attempt; default 15m
}

// Throttle counts sign-in attempts per account. A nil *Throttle is valid:
// it never delays (per-account throttling disabled: REDIS_URL unset).
type Throttle struct {
	rdb redis.UniversalClient
	opt Options
}

// New returns a Throttle keeping its counts in rdb.
func New(rdb redis.UniversalClient, opt Options) *Throttle {
	if opt.Prefix == "" {
		opt.Prefix = wire.DefaultRedisPrefix
	}
	if opt.Free <= 0 {
		opt.Free = 5
	}
	if opt.Base <= 0 {
		opt.Base = 250 * time.Millisecond
	}
	if opt.Max <= 0 {
		opt.Max = 8 * time.Second
	}
	if opt.Window <= 0 {
		opt.Window = 15 * time.Minute
	}
	return &Throttle{rdb: rdb, opt: opt}
}

// Key is the Redis key counting attempts for email (lower-cased here too).
// Hashing keeps addresses out of Redis and its dumps.
func Key(prefix, email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return prefix + "signin_fail:" + hex.EncodeToString(h[:])
}

// Attempt records one sign-in attempt for email and returns how long it
// must wait before its password is checked. On a Redis error it returns
// zero and the error: the caller proceeds without delay (fail open), since
// the proxy's per-IP limit still bounds guessing and an outage of this
// optional store must not stop every sign-in.
func (t *Throttle) Attempt(ctx context.Context, email string) (time.Duration, error) {
	if t == nil {
		return 0, nil
	}
	key := Key(t.opt.Prefix, email)
	var incr *redis.IntCmd
	_, err := t.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		incr = tx.Incr(ctx, key)
		tx.Expire(ctx, key, t.opt.Window)
		return nil
	})
	if err != nil {
		return 0, err
	}
	// This attempt is counted already: the failures before it are n-1.
	return t.Delay(int(incr.Val()) - 1), nil
}

// Delay is the wait for an attempt that follows `failures` failed ones:
// zero up to Free, then Base doubling per further failure, capped at Max.
func (t *Throttle) Delay(failures int) time.Duration {
	if t == nil || failures < t.opt.Free {
		return 0
	}
	d := t.opt.Base
	for i := t.opt.Free; i < failures; i++ {
		if d >= t.opt.Max {
			break
		}
		d *= 2
	}
	return min(d, t.opt.Max)
}

// Refund takes back one counted attempt that never reached a verdict (the
// database or the hasher was unavailable): an outage must not leave a user
// who retried through it slowed down afterwards.
func (t *Throttle) Refund(ctx context.Context, email string) error {
	if t == nil {
		return nil
	}
	key := Key(t.opt.Prefix, email)
	n, err := t.rdb.Decr(ctx, key).Result()
	if err == nil && n <= 0 {
		err = t.rdb.Del(ctx, key).Err()
	}
	return err
}

// Succeeded clears the count for email after a correct password.
func (t *Throttle) Succeeded(ctx context.Context, email string) error {
	if t == nil {
		return nil
	}
	return t.rdb.Del(ctx, Key(t.opt.Prefix, email)).Err()
}

// Wait sleeps for d, or until ctx ends (the client went away); it reports
// whether the full delay passed.
func Wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
