package token

// cache.go: the verified-signature cache, keyed by the SHA-256 of the whole
// token (hashToken), so a token sent again skips the public-key operation.

import (
	"crypto"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultCacheSize is the number of verified tokens remembered when
// Config.CacheSize is zero.
const DefaultCacheSize = 10_000

// sigCache remembers tokens whose signature has been verified, so that a
// client sending the same token on every request pays for the public-key
// operation (and the JSON parse) once. It is keyed by the SHA-256 of the
// whole compact token, so it never holds a token itself, and a hit means the
// very same header, payload and signature bytes as a token that verified.
//
// What a hit skips is only what cannot change for the same bytes: the
// signature, the JOSE header checks (alg, forbidden parameters) and the
// parse. Everything that depends on time or on state is checked again on
// every request by Verify: exp/nbf/iat with leeway, iss, aud, sub, the
// session's revocation, and that the key which verified the signature is
// still the key published under that kid (a key removed or replaced in the
// JWKS stops validating cached tokens at once). An entry is dropped once its
// token's exp has passed, so it never outlives the token.
//
// It is split into shards, each a map under its own lock, so concurrent
// requests rarely wait on each other; a full shard evicts an arbitrary entry
// (Go's map iteration starts at a random place), which bounds memory without
// the bookkeeping of an LRU.
type sigCache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

const cacheShards = 16

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*cacheEntry
}

// cacheEntry is a verified token: its claims (shared by every hit and never
// modified), and the key that verified it.
type cacheEntry struct {
	claims *Claims
	kid    string // "" for HS256
	alg    string
	key    crypto.PublicKey // the JWKS key that verified it; nil for HS256
	exp    time.Time
}

// newSigCache holds up to size entries; size < 0 disables caching (nil).
func newSigCache(size int) *sigCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	c := &sigCache{perShard: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*cacheEntry)
	}
	return c
}

func (c *sigCache) shard(h *[sha256.Size]byte) *cacheShard { return &c.shards[h[0]%cacheShards] }

// get returns the entry for h if its token has not expired at now.
func (c *sigCache) get(h *[sha256.Size]byte, now time.Time) *cacheEntry {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[*h]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	if !now.Before(e.exp) {
		c.drop(h)
		return nil
	}
	return e
}

func (c *sigCache) put(h *[sha256.Size]byte, e *cacheEntry) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*h]; !ok && len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[*h] = e
}

func (c *sigCache) drop(h *[sha256.Size]byte) {
	s := c.shard(h)
	s.mu.Lock()
	delete(s.m, *h)
	s.mu.Unlock()
}

func (c *sigCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// sameKey reports whether a and b are the same public key.
func sameKey(a, b crypto.PublicKey) bool {
	if k, ok := a.(interface{ Equal(crypto.PublicKey) bool }); ok {
		return k.Equal(b)
	}
	return false
}

// hashToken is sha256.Sum256([]byte(raw)) without allocating the copy on
// every request: the bytes go through a pooled buffer (tokens are at most
// MaxTokenBytes, checked before this).
func hashToken(raw string) [sha256.Size]byte {
	bp := hashBufs.Get().(*[]byte)
	b := append((*bp)[:0], raw...)
	h := sha256.Sum256(b)
	*bp = b
	hashBufs.Put(bp)
	return h
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
