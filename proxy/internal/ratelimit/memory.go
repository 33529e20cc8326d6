package ratelimit

import (
	"sync"
	"time"
)

// Memory is an in-process GCRA limiter with the same arithmetic as
// redis_rate's Lua script, so a request gets the same answer (and the same
// RateLimit-* headers) whichever store serves it. It is written here rather
// than taken from a library because that equivalence is the point, and it is
// thirty lines. The zero value is not usable; call NewMemory.
type Memory struct {
	mu      sync.Mutex
	tat     map[string]time.Time // theoretical arrival time per key
	maxKeys int
	now     func() time.Time
}

// NewMemory returns an empty in-process limiter holding at most maxKeys
// buckets (0 means 100,000); when full, expired buckets are swept first and,
// failing that, the new key is treated as allowed but not stored.
func NewMemory(maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	return &Memory{tat: make(map[string]time.Time), maxKeys: maxKeys, now: time.Now}
}

// Allow takes one request from key's bucket.
func (m *Memory) Allow(key string, l Limit) Result {
	now := m.now()
	emission := l.Period / time.Duration(l.Rate)
	burstOffset := emission * time.Duration(l.Rate)

	m.mu.Lock()
	defer m.mu.Unlock()
	tat, ok := m.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(emission)
	allowAt := newTAT.Add(-burstOffset)
	diff := now.Sub(allowAt)
	if diff < 0 {
		return Result{Limit: l, RetryAfter: -diff, ResetAfter: tat.Sub(now), Backend: BackendMemory}
	}
	if !ok && len(m.tat) >= m.maxKeys {
		m.sweepLocked(now)
		if len(m.tat) >= m.maxKeys {
			// Still full of live buckets (a flood of distinct clients):
			// forget an arbitrary hundredth of them rather than stop
			// limiting new keys, and so that the next new key does not pay
			// for another full sweep. A forgotten client starts a fresh
			// bucket; limiting goes on for everyone.
			n := max(1, m.maxKeys/100)
			for k := range m.tat {
				delete(m.tat, k)
				if n--; n == 0 {
					break
				}
			}
		}
	}
	m.tat[key] = newTAT
	return Result{
		Allowed: true, Limit: l, Remaining: int(diff / emission),
		RetryAfter: -1, ResetAfter: newTAT.Sub(now), Backend: BackendMemory,
	}
}

// Sweep drops buckets that are full again (nothing to remember).
func (m *Memory) Sweep() {
	m.mu.Lock()
	m.sweepLocked(m.now())
	m.mu.Unlock()
}

func (m *Memory) sweepLocked(now time.Time) {
	for k, tat := range m.tat {
		if !tat.After(now) {
			delete(m.tat, k)
		}
	}
}

// Len is the number of buckets held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}
