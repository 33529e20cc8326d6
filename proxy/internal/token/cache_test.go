package token_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/proxy/internal/token"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

// lookups counts cache hits and misses.
type lookups struct{ hits, misses atomic.Int64 }

func (l *lookups) record(hit bool) {
	if hit {
		l.hits.Add(1)
	} else {
		l.misses.Add(1)
	}
}

// settable is a clock tests move by hand.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (s *settable) now() time.Time  { s.mu.Lock(); defer s.mu.Unlock(); return s.t }
func (s *settable) set(t time.Time) { s.mu.Lock(); s.t = t; s.mu.Unlock() }

func TestCacheHitSkipsOnlyTheSignature(t *testing.T) {
	for _, alg := range append([]string{"HS256"}, asymAlgs...) {
		t.Run(alg, func(t *testing.T) {
			k := tokentest.NewKey(alg, "kid-"+alg)
			clock := &settable{t: time.Now()}
			var l lookups
			revoked := atomic.Bool{}
			c := token.Config{Issuer: tokentest.Issuer, Audience: tokentest.Audience, Leeway: 30 * time.Second,
				Now: clock.now, OnCacheLookup: l.record, Revoked: func(sid string) bool { return revoked.Load() && sid == "s1" }}
			if alg == "HS256" {
				k.KID = ""
				c.Secret = tokentest.Secret
			} else {
				c.JWKSURL = tokentest.NewJWKS(t, k).URL()
				c.JWKS = fastJWKS(nil)
			}
			v := newVerifier(t, c)
			waitFor(t, "keys", v.KeysReady)
			ctx := context.Background()
			claims := tokentest.Claims("u1") // exp in 15 minutes, sid s1
			raw := k.Sign(t, claims, nil)
			for i := range 3 {
				if got, err := v.Verify(ctx, raw); err != nil || got.Subject != "u1" || got.SID != "s1" {
					t.Fatalf("verify %d: %v, %+v", i, err, got)
				}
			}
			if l.misses.Load() != 1 || l.hits.Load() != 2 {
				t.Errorf("misses %d hits %d, want 1 and 2", l.misses.Load(), l.hits.Load())
			}

			// A different signature over the same header and payload is a
			// different cache key: verified in full, and refused.
			tampered := raw[:len(raw)-2] + flip(raw[len(raw)-2]) + raw[len(raw)-1:]
			if _, err := v.Verify(ctx, tampered); token.ReasonOf(err) != token.ReasonBadSignature && token.ReasonOf(err) != token.ReasonMalformed {
				t.Errorf("tampered signature after a cached hit: %v, want bad_signature", err)
			}

			// Revocation is checked on hits.
			revoked.Store(true)
			if _, err := v.Verify(ctx, raw); token.ReasonOf(err) != token.ReasonRevoked {
				t.Errorf("revoked session on a cache hit: %v, want revoked", err)
			}
			revoked.Store(false)

			// exp is checked on hits, with the leeway: 10 s past exp still
			// passes (verified in full: the entry went at exp), 31 s does not.
			exp := time.Unix(claims["exp"].(int64), 0)
			clock.set(exp.Add(10 * time.Second))
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Errorf("within leeway after exp: %v", err)
			}
			clock.set(exp.Add(31 * time.Second))
			if _, err := v.Verify(ctx, raw); token.ReasonOf(err) != token.ReasonExpired {
				t.Errorf("past exp + leeway: %v, want expired", err)
			}
			// iat is checked on hits too: a clock behind the token's iat.
			clock.set(time.Now())
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
			clock.set(time.Unix(claims["iat"].(int64), 0).Add(-time.Minute))
			if _, err := v.Verify(ctx, raw); token.ReasonOf(err) != token.ReasonNotYetValid {
				t.Errorf("before iat - leeway on a cached token: %v, want not_yet_valid", err)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestCacheDropsRemovedAndReplacedKeys: a cached token stops verifying the
// moment its key leaves the JWKS, or a different key takes its kid.
func TestCacheDropsRemovedAndReplacedKeys(t *testing.T) {
	a, b := tokentest.NewKey("EdDSA", "a"), tokentest.NewKey("EdDSA", "b")
	jwks := tokentest.NewJWKS(t, a, b)
	cfg := fastJWKS(nil)
	cfg.RefreshInterval = 20 * time.Millisecond
	var l lookups
	v := newVerifier(t, token.Config{JWKSURL: jwks.URL(), JWKS: cfg, OnCacheLookup: l.record})
	waitKeys(t, v)
	ctx := context.Background()
	rawA, rawB := a.Sign(t, tokentest.Claims("u1"), nil), b.Sign(t, tokentest.Claims("u1"), nil)
	for _, raw := range []string{rawA, rawA, rawB, rawB} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if l.hits.Load() != 2 {
		t.Fatalf("hits %d, want 2", l.hits.Load())
	}
	// a removed; b's kid now names another key.
	imposter := tokentest.NewKey("EdDSA", "b")
	jwks.SetKeys(t, imposter)
	waitFor(t, "cached token of removed key a refused", func() bool {
		_, err := v.Verify(ctx, rawA)
		return token.ReasonOf(err) == token.ReasonUnknownKID
	})
	waitFor(t, "cached token of replaced key b refused", func() bool {
		_, err := v.Verify(ctx, rawB)
		return token.ReasonOf(err) == token.ReasonBadSignature
	})
}

func TestCacheIsBounded(t *testing.T) {
	v := newVerifier(t, token.Config{Secret: tokentest.Secret, CacheSize: 32})
	k := tokentest.NewKey("HS256", "")
	ctx := context.Background()
	for i := range 200 {
		if _, err := v.Verify(ctx, k.Sign(t, tokentest.Claims(fmt.Sprintf("u%d", i)), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.CacheLen(); n > 32 || n == 0 {
		t.Errorf("cache holds %d entries, want 1..32", n)
	}
	off := newVerifier(t, token.Config{Secret: tokentest.Secret, CacheSize: -1})
	raw := k.Sign(t, tokentest.Claims("u1"), nil)
	for range 2 {
		if _, err := off.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
}
