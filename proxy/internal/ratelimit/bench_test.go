package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/ratelimit"
)

// BenchmarkAllow is the rate-limit check on an auth route: one GCRA round
// trip to Redis, or the in-process fallback. Keys rotate over 1,000 clients
// so the limit is never reached and every call does the full arithmetic.
func BenchmarkAllow(b *testing.B) {
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("auth_strict:198.51.100.%d", i)
	}
	b.Run("redis", func(b *testing.B) {
		rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(b)})
		prefix := fmt.Sprintf("bench:%d:", time.Now().UnixNano())
		b.Cleanup(func() {
			ctx := context.Background()
			for it := rdb.Scan(ctx, 0, "rate:"+prefix+"*", 100).Iterator(); it.Next(ctx); {
				rdb.Del(ctx, it.Val())
			}
			rdb.Close()
		})
		l := ratelimit.New(rdb)
		l.Prefix = prefix
		l.CallTimeout = 5 * time.Second
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if res := l.Allow(ctx, keys[i%len(keys)], lim); res.Backend != ratelimit.BackendRedis {
				b.Fatal("fell back to memory")
			}
			i++
		}
	})
	b.Run("memory", func(b *testing.B) {
		l := ratelimit.New(nil)
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(ctx, keys[i%len(keys)], lim)
			i++
		}
	})
}
