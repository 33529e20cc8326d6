// Package ratelimit limits requests per key with GCRA: in Redis through
// go-redis/redis_rate (one atomic Lua script, one round trip), and in process
// when Redis is unreachable, returning to Redis once it answers again.
package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is Rate requests per Period, with a burst of Rate: "10/m" lets ten
// requests through at once and then one every six seconds.
type Limit struct {
	Rate   int
	Period time.Duration
}

func (l Limit) String() string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[l.Period]
	return strconv.Itoa(l.Rate) + "/" + unit
}

// ParseLimit parses "<n>/<unit>" with unit s, m or h (also sec, min, hour),
// e.g. "10/m", "100/s", "1000/h". n must be 1 to 1,000,000.
func ParseLimit(s string) (Limit, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Limit{}, fmt.Errorf("%q: want <count>/<s|m|h>, e.g. 10/m", s)
	}
	rate, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || rate < 1 || rate > 1_000_000 {
		return Limit{}, fmt.Errorf("%q: want a count from 1 to 1000000 before the slash", s)
	}
	var period time.Duration
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	case "h", "hour":
		period = time.Hour
	default:
		return Limit{}, fmt.Errorf("%q: want a unit of s, m or h after the slash", s)
	}
	return Limit{Rate: rate, Period: period}, nil
}

// Result is a limiter's answer.
type Result struct {
	Allowed bool
	Limit   Limit
	// Remaining is how many more requests would be allowed now.
	Remaining int
	// RetryAfter is how long until the next request is allowed (when denied).
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
	// Backend is the store that answered.
	Backend Backend
}

// Backend names a limiter store.
type Backend string

// Backends.
const (
	BackendRedis  Backend = "redis"
	BackendMemory Backend = "memory"
)
