package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newThrottle(t *testing.T, opt Options) (*Throttle, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	opt.Prefix = fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		for it := rdb.Scan(ctx, 0, opt.Prefix+"*", 100).Iterator(); it.Next(ctx); {
			rdb.Del(ctx, it.Val())
		}
		rdb.Close()
	})
	return New(rdb, opt), rdb
}

func TestDelayGrowsAfterFreeFailuresAndCaps(t *testing.T) {
	th := New(nil, Options{}) // defaults: 5 free, 250ms doubling, 8s cap
	for _, tt := range []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {4, 0}, {5, 250 * time.Millisecond}, {6, 500 * time.Millisecond},
		{7, time.Second}, {10, 8 * time.Second}, {11, 8 * time.Second}, {1 << 30, 8 * time.Second},
	} {
		if got := th.Delay(tt.failures); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
	if d := (*Throttle)(nil).Delay(100); d != 0 {
		t.Errorf("nil Throttle delays %v", d)
	}
}

// TestAttemptCountsPerAccount: five attempts are free, the sixth and later
// are slowed, a success resets, unknown and known emails are alike (the
// key depends only on the email) and another account is unaffected.
func TestAttemptCountsPerAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	th, rdb := newThrottle(t, Options{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond, Window: time.Minute})
	attempt := func(email string) time.Duration {
		t.Helper()
		d, err := th.Attempt(ctx, email)
		if err != nil {
			t.Fatalf("Attempt: %v", err)
		}
		return d
	}
	var got []time.Duration
	for range 9 {
		got = append(got, attempt("victim@example.com"))
	}
	want := []time.Duration{0, 0, 0, 0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
	if d := attempt("other@example.com"); d != 0 {
		t.Errorf("another account's first attempt delayed %v", d)
	}
	if d := attempt("VICTIM@Example.com"); d != 400*time.Millisecond {
		t.Errorf("same account in other letter case: delay %v, want 400ms", d)
	}
	if err := th.Succeeded(ctx, "victim@example.com"); err != nil {
		t.Fatal(err)
	}
	if d := attempt("victim@example.com"); d != 0 {
		t.Errorf("after a success: delay %v, want 0", d)
	}

	key := Key(th.opt.Prefix, "victim@example.com")
	sum := sha256.Sum256([]byte("victim@example.com"))
	if key != th.opt.Prefix+"signin_fail:"+hex.EncodeToString(sum[:]) {
		t.Errorf("key = %q", key)
	}
	if ttl := rdb.TTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL of %s = %v, want up to the 1m window", key, ttl)
	}
}

func TestAttemptFailsOpenWithoutRedis(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	th := New(rdb, Options{})
	d, err := th.Attempt(context.Background(), "a@example.com")
	if err == nil || d != 0 {
		t.Errorf("Attempt with Redis unreachable = %v, %v; want 0 and an error", d, err)
	}
}

func TestWaitStopsWhenTheClientLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Wait(ctx, time.Hour) {
		t.Error("Wait returned true for a cancelled context")
	}
	if !Wait(context.Background(), time.Millisecond) || !Wait(ctx, 0) {
		t.Error("Wait returned false for a short or zero delay")
	}
}

func TestRefundTakesBackAnUndecidedAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	th, _ := newThrottle(t, Options{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond, Window: time.Minute})
	for range 5 {
		if _, err := th.Attempt(ctx, "outage@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	// Twenty attempts during an outage, each refunded: no verdict, no count.
	for range 20 {
		if _, err := th.Attempt(ctx, "outage@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := th.Refund(ctx, "outage@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := th.Attempt(ctx, "outage@example.com"); d != 100*time.Millisecond {
		t.Errorf("after 5 failures and 20 refunded attempts: delay %v, want 100ms (the 6th attempt)", d)
	}
	// Refunding a key that is gone leaves nothing behind.
	if err := th.Refund(ctx, "never@example.com"); err != nil {
		t.Fatal(err)
	}
	if d, _ := th.Attempt(ctx, "never@example.com"); d != 0 {
		t.Errorf("first attempt after a stray refund delayed %v", d)
	}
}
