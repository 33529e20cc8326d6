package throttle

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
)

// TestMailQuota: per-email and per-IP limits in Redis, IPv6 counted by /64,
// and the in-process fallback keeping the limit when Redis is down.
func TestMailQuota(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		for it := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator(); it.Next(ctx); {
			rdb.Del(ctx, it.Val())
		}
		rdb.Close()
	})
	q := NewMailQuota(rdb, prefix, 2, 3, time.Minute)
	take := func(email, ip string) bool {
		t.Helper()
		ok, retry, fallback := q.Take(ctx, email, ip)
		if fallback {
			t.Fatal("fell back to in-process counts with Redis up")
		}
		if !ok && (retry <= 0 || retry > time.Minute) {
			t.Errorf("retry = %v, want within the window", retry)
		}
		return ok
	}
	if !take("A@example.com", "192.0.2.1") || !take("a@example.com", "192.0.2.2") {
		t.Fatal("first two mails to one address refused")
	}
	if take("a@EXAMPLE.com", "192.0.2.3") {
		t.Error("third mail to one address (any case, any IP) allowed; limit is 2")
	}
	// Per IP: 3 per window, IPv6 counted by its /64.
	if !take("b1@example.com", "2001:db8::1") || !take("b2@example.com", "2001:db8::2") || !take("b3@example.com", "2001:db8::ffff") {
		t.Fatal("first three mails from one /64 refused")
	}
	if take("b4@example.com", "2001:db8::abcd") {
		t.Error("fourth mail from one /64 allowed; limit is 3")
	}
	if !take("b5@example.com", "2001:db8:0:1::1") {
		t.Error("another /64 was limited too")
	}

	// Redis down: the in-process counts still limit.
	dead := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	q = NewMailQuota(dead, prefix, 1, 10, time.Minute)
	ok1, _, fb := q.Take(ctx, "c@example.com", "192.0.2.9")
	ok2, _, _ := q.Take(ctx, "c@example.com", "192.0.2.9")
	if !fb || !ok1 || ok2 {
		t.Errorf("Redis down: fallback=%v first=%v second=%v; want fallback, allowed, refused", fb, ok1, ok2)
	}
}
