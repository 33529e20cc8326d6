package token_test

import (
	"context"
	"testing"
	"time"

	"gatehouse.dev/proxy/internal/token"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

func newBenchVerifier(b *testing.B, k *tokentest.Key, cacheSize int) *token.Verifier {
	b.Helper()
	c := token.Config{Issuer: tokentest.Issuer, Audience: tokentest.Audience, Leeway: 30 * time.Second,
		CacheSize: cacheSize, Revoked: func(string) bool { return false }}
	if k.Alg == "HS256" {
		c.Secret = tokentest.Secret
	} else {
		jwks := tokentest.NewJWKS(b, k)
		c.JWKSURL = jwks.URL()
		c.JWKS = token.JWKSConfig{RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond}
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	v, err := token.NewVerifier(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !v.KeysReady(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("JWKS did not load")
		}
	}
	return v
}

// BenchmarkVerify measures Verify for each algorithm with a warm key cache:
// the cost the proxy adds to every /api request. "cold" checks the signature
// every time (cache off: a token seen for the first time); "cached" is the
// same token again (signature skipped; claims, key and revocation checked).
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256", "PS256", "HS256"} {
		for _, mode := range []struct {
			name string
			size int
		}{{"cold", -1}, {"cached", 0}} {
			b.Run(alg+"/"+mode.name, func(b *testing.B) { benchVerify(b, alg, mode.size) })
		}
	}
}

func benchVerify(b *testing.B, alg string, cacheSize int) {
	k := tokentest.NewKey(alg, "kid-"+alg)
	if alg == "HS256" {
		k.KID = ""
	}
	v := newBenchVerifier(b, k, cacheSize)
	raw := k.Sign(b, tokentest.Claims("bench-user"), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	h := map[string][]string{
		"Authorization": {"Bearer aaaa.bbbb.cccc"},
		"Cookie":        {"theme=dark; better-auth.session_token=s; better-auth.access_token=aaaa.bbbb.cccc"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := token.Extract(h, names); err != nil {
			b.Fatal(err)
		}
	}
}
