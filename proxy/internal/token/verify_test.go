package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/proxy/internal/token"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

var asymAlgs = []string{"EdDSA", "ES256", "RS256", "PS256"}

// fastJWKS keeps tests quick: no waiting for production intervals.
func fastJWKS(fetches *atomic.Int64) token.JWKSConfig {
	return token.JWKSConfig{
		RefreshInterval:    time.Hour,
		UnknownKIDCooldown: time.Hour,
		RetryMin:           10 * time.Millisecond,
		RetryMax:           50 * time.Millisecond,
		OnFetch: func(error) {
			if fetches != nil {
				fetches.Add(1)
			}
		},
	}
}

func newVerifier(t *testing.T, c token.Config) *token.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := token.NewVerifier(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitKeys(t *testing.T, v *token.Verifier) {
	t.Helper()
	waitFor(t, "JWKS to load", v.JWKSLoaded)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fixture is a verifier over a JWKS with one key per asymmetric algorithm
// and the HS256 secret.
type fixture struct {
	keys map[string]*tokentest.Key
	jwks *tokentest.JWKS
	v    *token.Verifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{keys: map[string]*tokentest.Key{}}
	var list []*tokentest.Key
	for _, alg := range asymAlgs {
		k := tokentest.NewKey(alg, "kid-"+alg)
		f.keys[alg] = k
		list = append(list, k)
	}
	f.keys["HS256"] = tokentest.NewKey("HS256", "")
	f.jwks = tokentest.NewJWKS(t, list...)
	f.v = newVerifier(t, token.Config{
		Secret: tokentest.Secret, JWKSURL: f.jwks.URL(),
		Issuer: tokentest.Issuer, Audience: tokentest.Audience,
		Leeway: 30 * time.Second, JWKS: fastJWKS(nil),
	})
	waitKeys(t, f.v)
	return f
}

func TestVerifyAcceptsEveryAlgorithm(t *testing.T) {
	f := newFixture(t)
	for _, alg := range append(asymAlgs, "HS256") {
		t.Run(alg, func(t *testing.T) {
			raw := f.keys[alg].Sign(t, tokentest.Claims("user-"+alg), nil)
			c, err := f.v.Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "user-"+alg {
				t.Errorf("sub = %q, want %q", c.Subject, "user-"+alg)
			}
		})
	}
}

func TestVerifyAudienceArray(t *testing.T) {
	f := newFixture(t)
	cl := tokentest.Claims("u1")
	cl["aud"] = []string{"other", tokentest.Audience}
	if _, err := f.v.Verify(context.Background(), f.keys["EdDSA"].Sign(t, cl, nil)); err != nil {
		t.Fatalf("aud array containing ours: %v", err)
	}
}

// Rejections returns every hostile token with the reason it must be refused
// for. jkuURL is where jku/x5u point (a listener that must see no request).
func rejections(t *testing.T, f *fixture, jkuURL string) []struct {
	name string
	raw  string
	want token.Reason
} {
	ed, hs := f.keys["EdDSA"], f.keys["HS256"]
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := tokentest.Claims("u1")
		mod(c)
		return c
	}
	now := time.Now()
	good := ed.Sign(t, tokentest.Claims("u1"), nil)
	parts := strings.Split(good, ".")
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, tokentest.Claims("u1")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	// The key-confusion attack: HS256 "signed" with a JWKS public key (its PEM
	// and its raw bytes), under that key's kid.
	der, err := x509.MarshalPKIXPublicKey(f.keys["RS256"].Pub)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	confused := tokentest.NewKeyWithSecret("HS256", rsaPEM)
	confused.KID = "kid-RS256"
	confusedEd := tokentest.NewKeyWithSecret("HS256", []byte(ed.Pub.(ed25519.PublicKey)))
	confusedEd.KID = "kid-EdDSA"

	otherKey := tokentest.NewKey("EdDSA", "kid-EdDSA") // same kid, different key
	return []struct {
		name string
		raw  string
		want token.Reason
	}{
		{"garbage", "not-a-token", token.ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], token.ReasonMalformed},
		{"thousands of dots", strings.Repeat(".", 5000), token.ReasonMalformed},
		{"header of dots", strings.Repeat(".", 3000) + "a.b.c", token.ReasonMalformed},
		{"bad base64", "%%%." + parts[1] + "." + parts[2], token.ReasonMalformed},
		{"oversized", ed.Sign(t, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("a", 9000) }), nil), token.ReasonTooLarge},
		{"alg none", noneTok, token.ReasonMalformed}, // empty signature segment
		{"alg none with a signature", noneTok + parts[2], token.ReasonBadAlg},
		{"alg None", forgeHeader(t, good, `{"alg":"None","typ":"JWT"}`), token.ReasonBadAlg},
		{"unknown alg", forgeHeader(t, good, `{"alg":"HS512","kid":"kid-EdDSA","typ":"JWT"}`), token.ReasonBadAlg},
		{"HS256 with RSA public key PEM", confused.Sign(t, tokentest.Claims("u1"), nil), token.ReasonBadSignature},
		{"HS256 with Ed25519 public key", confusedEd.Sign(t, tokentest.Claims("u1"), nil), token.ReasonBadSignature},
		{"alg swapped to ES256 on EdDSA key", forgeHeader(t, good, `{"alg":"ES256","kid":"kid-EdDSA","typ":"JWT"}`), token.ReasonBadAlg},
		{"RS256 token claiming PS256", forgeHeader(t, f.keys["RS256"].Sign(t, tokentest.Claims("u1"), nil), `{"alg":"PS256","kid":"kid-RS256","typ":"JWT"}`), token.ReasonBadAlg},
		{"unknown kid", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"kid": "nope"}), token.ReasonUnknownKID},
		{"no kid", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"kid": nil}), token.ReasonUnknownKID},
		{"wrong key same kid", otherKey.Sign(t, tokentest.Claims("u1"), nil), token.ReasonBadSignature},
		{"embedded jwk", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"jwk": map[string]any{"kty": "OKP"}}), token.ReasonForbiddenHeader},
		{"jku", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"jku": jkuURL}), token.ReasonForbiddenHeader},
		{"x5u", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"x5u": jkuURL}), token.ReasonForbiddenHeader},
		{"x5c", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"x5c": []string{"MIIB"}}), token.ReasonForbiddenHeader},
		{"crit", ed.Sign(t, tokentest.Claims("u1"), map[string]any{"crit": []string{"exp"}}), token.ReasonForbiddenHeader},
		{"tampered payload", parts[0] + "." + forgePayload(t, `{"sub":"admin"}`) + "." + parts[2], token.ReasonBadSignature},
		{"expired", ed.Sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), nil), token.ReasonExpired},
		{"not yet valid", ed.Sign(t, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), nil), token.ReasonNotYetValid},
		{"issued in the future", ed.Sign(t, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), nil), token.ReasonNotYetValid},
		{"wrong iss", ed.Sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil" }), nil), token.ReasonBadIssuer},
		{"missing iss", ed.Sign(t, claims(func(c jwt.MapClaims) { delete(c, "iss") }), nil), token.ReasonMissingClaim},
		{"wrong aud", ed.Sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "https://other" }), nil), token.ReasonBadAudience},
		{"wrong aud array", ed.Sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }), nil), token.ReasonBadAudience},
		{"missing exp", ed.Sign(t, claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil), token.ReasonMissingClaim},
		{"missing sub", ed.Sign(t, claims(func(c jwt.MapClaims) { delete(c, "sub") }), nil), token.ReasonMissingClaim},
		{"sub with space", ed.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = "a b" }), nil), token.ReasonBadSubject},
		{"sub with comma", ed.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = "a,b" }), nil), token.ReasonBadSubject},
		{"sub with newline", ed.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = "a\nX-Evil: 1" }), nil), token.ReasonBadSubject},
		{"sub non-ASCII", ed.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = "usér" }), nil), token.ReasonBadSubject},
		{"sub too long", ed.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("a", 129) }), nil), token.ReasonBadSubject},
		{"sub not a string", ed.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = 42 }), nil), token.ReasonMalformed},
		{"HS256 wrong secret", tokentest.NewKeyWithSecret("HS256", []byte("another-secret-of-at-least-32-bytes!!")).Sign(t, tokentest.Claims("u1"), nil), token.ReasonBadSignature},
		{"HS256 expired", hs.Sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), nil), token.ReasonExpired},
	}
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	var jkuHits atomic.Int64
	jku := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { jkuHits.Add(1) }))
	defer jku.Close()
	for _, tt := range rejections(t, f, jku.URL+"/keys") {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), tt.raw)
			if err == nil {
				t.Fatal("Verify accepted the token")
			}
			if got := token.ReasonOf(err); got != tt.want {
				t.Errorf("reason = %q, want %q (err %v)", got, tt.want, err)
			}
			if strings.Contains(err.Error(), tt.raw) && len(tt.raw) > 20 {
				t.Errorf("error text contains the token")
			}
		})
	}
	if n := jkuHits.Load(); n != 0 {
		t.Errorf("jku/x5u listener got %d requests, want 0", n)
	}
}

func TestVerifyHS256OnlyWithoutJWKS(t *testing.T) {
	v := newVerifier(t, token.Config{Secret: tokentest.Secret, Leeway: time.Second})
	if !v.KeysReady() {
		t.Fatal("KeysReady = false with a secret")
	}
	ed := tokentest.NewKey("EdDSA", "k1")
	if _, err := v.Verify(context.Background(), ed.Sign(t, tokentest.Claims("u1"), nil)); token.ReasonOf(err) != token.ReasonBadAlg {
		t.Errorf("EdDSA without JWKS: reason %q, want bad_alg", token.ReasonOf(err))
	}
	hs := tokentest.NewKey("HS256", "")
	if _, err := v.Verify(context.Background(), hs.Sign(t, tokentest.Claims("u1"), nil)); err != nil {
		t.Errorf("HS256: %v", err)
	}
}

func TestVerifyHS256RejectedWithoutSecret(t *testing.T) {
	ed := tokentest.NewKey("EdDSA", "k1")
	jwks := tokentest.NewJWKS(t, ed)
	v := newVerifier(t, token.Config{JWKSURL: jwks.URL(), JWKS: fastJWKS(nil)})
	waitKeys(t, v)
	hs := tokentest.NewKey("HS256", "k1")
	if _, err := v.Verify(context.Background(), hs.Sign(t, tokentest.Claims("u1"), nil)); token.ReasonOf(err) != token.ReasonBadAlg {
		t.Errorf("HS256 without secret: reason %q, want bad_alg", token.ReasonOf(err))
	}
}

func TestJWKSNotLoadedYieldsUnavailable(t *testing.T) {
	jwks := tokentest.NewJWKS(t)
	jwks.SetDown(true)
	ed := tokentest.NewKey("EdDSA", "k1")
	jwks.SetKeys(t, ed)
	v := newVerifier(t, token.Config{JWKSURL: jwks.URL(), JWKS: fastJWKS(nil)})
	raw := ed.Sign(t, tokentest.Claims("u1"), nil)
	_, err := v.Verify(context.Background(), raw)
	if token.ReasonOf(err) != token.ReasonKeysUnavailable {
		t.Fatalf("before load: reason %q, want keys_unavailable", token.ReasonOf(err))
	}
	if v.KeysReady() {
		t.Fatal("KeysReady before any successful fetch")
	}
	jwks.SetDown(false) // authsvc comes up: the background retry must pick it up
	waitKeys(t, v)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("after load: %v", err)
	}
}

func TestJWKSRotationWithoutRestart(t *testing.T) {
	a, b, c := tokentest.NewKey("EdDSA", "a"), tokentest.NewKey("EdDSA", "b"), tokentest.NewKey("ES256", "c")
	jwks := tokentest.NewJWKS(t, a)
	cfg := fastJWKS(nil)
	cfg.RefreshInterval = 20 * time.Millisecond // background refresh
	v := newVerifier(t, token.Config{JWKSURL: jwks.URL(), JWKS: cfg})
	waitKeys(t, v)
	ctx := context.Background()
	if _, err := v.Verify(ctx, a.Sign(t, tokentest.Claims("u1"), nil)); err != nil {
		t.Fatal(err)
	}
	// Rotation to b: the unknown kid triggers one refresh (cooldown is an hour).
	jwks.SetKeys(t, a, b)
	if _, err := v.Verify(ctx, b.Sign(t, tokentest.Claims("u1"), nil)); err != nil {
		t.Fatalf("new kid b after rotation: %v", err)
	}
	// Rotation to c: the unknown-kid slot is spent, so only the background
	// refresh can bring c in.
	jwks.SetKeys(t, b, c)
	rawC := c.Sign(t, tokentest.Claims("u1"), nil)
	waitFor(t, "background refresh to bring kid c", func() bool {
		_, err := v.Verify(ctx, rawC)
		return err == nil
	})
	// a was removed from the set: revoked.
	waitFor(t, "kid a to be dropped", func() bool {
		_, err := v.Verify(ctx, a.Sign(t, tokentest.Claims("u1"), nil))
		return token.ReasonOf(err) == token.ReasonUnknownKID
	})
}

func TestJWKSUnknownKIDFloodFetchesOncePerCooldown(t *testing.T) {
	ed := tokentest.NewKey("EdDSA", "k1")
	jwks := tokentest.NewJWKS(t, ed)
	var fetches atomic.Int64
	v := newVerifier(t, token.Config{JWKSURL: jwks.URL(), JWKS: fastJWKS(&fetches)})
	waitKeys(t, v)
	before := jwks.Hits()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := ed.Sign(t, tokentest.Claims("u1"), map[string]any{"kid": "unknown-" + string(rune('a'+i%26))})
			if _, err := v.Verify(context.Background(), raw); token.ReasonOf(err) != token.ReasonUnknownKID {
				t.Errorf("reason %q, want unknown_kid", token.ReasonOf(err))
			}
		}()
	}
	wg.Wait()
	if got := jwks.Hits() - before; got > 1 {
		t.Errorf("JWKS fetched %d times during the flood, want at most 1 per cooldown", got)
	}
	if _, err := v.Verify(context.Background(), ed.Sign(t, tokentest.Claims("u1"), nil)); err != nil {
		t.Errorf("known kid after flood: %v", err)
	}
}

func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	ed := tokentest.NewKey("EdDSA", "k1")
	jwks := tokentest.NewJWKS(t, ed)
	var fails atomic.Int64
	cfg := fastJWKS(nil)
	cfg.RefreshInterval = 10 * time.Millisecond
	cfg.OnFetch = func(err error) {
		if err != nil {
			fails.Add(1)
		}
	}
	v := newVerifier(t, token.Config{JWKSURL: jwks.URL(), JWKS: cfg})
	waitKeys(t, v)
	jwks.SetDown(true)
	waitFor(t, "a failed refresh", func() bool { return fails.Load() >= 2 })
	if _, err := v.Verify(context.Background(), ed.Sign(t, tokentest.Claims("u1"), nil)); err != nil {
		t.Fatalf("cached key while JWKS is down: %v", err)
	}
	jwks.Close() // connection refused, not just 503
	waitFor(t, "more failed refreshes", func() bool { return fails.Load() >= 4 })
	if _, err := v.Verify(context.Background(), ed.Sign(t, tokentest.Claims("u1"), nil)); err != nil {
		t.Fatalf("cached key while JWKS is gone: %v", err)
	}
}

func TestNewVerifierNeedsAKey(t *testing.T) {
	if _, err := token.NewVerifier(context.Background(), token.Config{}); err == nil {
		t.Fatal("NewVerifier with neither secret nor JWKS: no error")
	}
}
