package revoke

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/kit/wire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// client returns a client of the shared Redis and a per-test prefix whose
// keys are deleted when the test ends.
func client(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		for it := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator(); it.Next(ctx); {
			rdb.Del(ctx, it.Val())
		}
		rdb.Close()
	})
	return rdb, prefix
}

func TestRevokeWritesSetPrunesAndPublishes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := client(t)
	if wire.RevokedKey(prefix) != prefix+"revoked_sids" || wire.RevocationChannel(prefix) != prefix+"revocations" {
		t.Fatalf("Key/Channel = %q, %q", wire.RevokedKey(prefix), wire.RevocationChannel(prefix))
	}
	// A stale entry (its tokens expired an hour ago) must be pruned.
	stale := time.Now().Add(-time.Hour).Unix()
	rdb.ZAdd(ctx, wire.RevokedKey(prefix), redis.Z{Score: float64(stale), Member: "old-sid"})

	sub := rdb.Subscribe(ctx, wire.RevocationChannel(prefix))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	var published int
	p := New(rdb, Options{Prefix: prefix, TokenTTL: 15 * time.Minute,
		Observer: Observer{Published: func(n int) { published += n }}})
	before := time.Now().Unix()
	if err := p.Revoke(ctx, "sidA", "", "sidB"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	after := time.Now().Unix()
	lo, hi := before+15*60+60, after+15*60+60

	got := map[string]int64{}
	for range 2 {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := sub.ReceiveMessage(mctx)
		cancel()
		if err != nil {
			t.Fatalf("no revocation message: %v", err)
		}
		sid, exp, ok := strings.Cut(msg.Payload, " ")
		n, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil || strings.Contains(exp, " ") {
			t.Fatalf("message %q: want \"<sid> <unix seconds>\"", msg.Payload)
		}
		got[sid] = n
	}
	for _, sid := range []string{"sidA", "sidB"} {
		if exp := got[sid]; exp < lo || exp > hi {
			t.Errorf("message for %s: exp %d, want in [%d, %d] (now + JWT_TTL + 60s)", sid, exp, lo, hi)
		}
		score, err := rdb.ZScore(ctx, wire.RevokedKey(prefix), sid).Result()
		if err != nil || int64(score) != got[sid] {
			t.Errorf("ZSCORE %s = %v, %v; want %d", sid, score, err, got[sid])
		}
	}
	if n := rdb.ZCard(ctx, wire.RevokedKey(prefix)).Val(); n != 2 {
		t.Errorf("set has %d members, want 2 (stale entry pruned, empty sid skipped)", n)
	}
	if published != 2 || p.Pending() != 0 {
		t.Errorf("published = %d, pending = %d; want 2, 0", published, p.Pending())
	}
	if err := (*Publisher)(nil).Revoke(ctx, "x"); err != nil {
		t.Errorf("nil Publisher: %v", err)
	}
}

// TestRevokeRetriesUntilRedisIsBack: a write that fails is queued, retried
// by Run, and lands once Redis answers again; an expired one is dropped.
func TestRevokeRetriesUntilRedisIsBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := testenv.NewRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	var failed, dropped int
	p := New(rdb, Options{TokenTTL: time.Minute, RetryEvery: 50 * time.Millisecond, MaxQueue: 2,
		Observer: Observer{Failed: func(n int) { failed += n }, Dropped: func(n int) { dropped += n }}})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"s1", "s2", "s3"} {
		if err := p.Revoke(ctx, sid); err == nil {
			t.Fatalf("Revoke(%s) with Redis stopped: nil error", sid)
		}
	}
	if failed != 3 || dropped != 1 || p.Pending() != 2 {
		t.Fatalf("failed, dropped, pending = %d, %d, %d; want 3, 1, 2 (queue bound 2 drops the oldest)", failed, dropped, p.Pending())
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for p.Pending() > 0 || rdb.ZCard(ctx, wire.RevokedKey(wire.DefaultRedisPrefix)).Val() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("queued revocations not written after Redis came back (pending %d)", p.Pending())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rdb.ZScore(ctx, wire.RevokedKey(wire.DefaultRedisPrefix), "s1").Err() != redis.Nil {
		t.Errorf("s1 was dropped from the full queue but is in the set")
	}
	cancel()
	<-done

	// An entry whose tokens have all expired is not retried.
	p.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	p.enqueue([]entry{{sid: "expired", exp: time.Now().Add(-time.Hour).Unix()}})
	p.now = time.Now
	p.retry(context.Background())
	if p.Pending() != 0 || dropped != 2 {
		t.Errorf("expired entry: pending %d, dropped %d; want 0, 2", p.Pending(), dropped)
	}
}
