package token

// verify.go: the Verifier and its pipeline. Verify runs the shape check
// (shape.go), then either a verified-signature cache hit (cache.go) or the
// full check: golang-jwt parses and checks the signature with the key
// keyFor pins to the algorithm (keys.go) and exp/nbf/iat/iss/aud, the
// strict claims scan (strict.go) refuses what encoding/json would bend, and
// sub must be a user ID. Last, the session must not be revoked.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/kit/wire"
)

// Config configures a Verifier. At least one of Secret and JWKSURL must be set.
type Config struct {
	// Secret, when non-empty, verifies HS256 tokens. It should be 32+ bytes.
	Secret []byte
	// JWKSURL, when non-empty, is fetched for EdDSA/ES256/RS256/PS256 keys.
	JWKSURL string
	// Issuer and Audience, when non-empty, must match iss and aud.
	Issuer, Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// JWKS fetching and caching; zero values take the production defaults.
	JWKS JWKSConfig
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Revoked, if set, reports whether the session a token belongs to (its
	// sid claim) has ended; such tokens are ReasonRevoked. It is called on
	// every Verify, so it must not block (the proxy's is an in-memory set).
	// Tokens without sid are never revoked.
	Revoked func(sid string) bool
	// CacheSize bounds the cache of verified signatures (see sigCache): 0
	// means DefaultCacheSize, negative disables it.
	CacheSize int
	// OnCacheLookup, if set, is called on every Verify that gets as far as
	// the cache, with whether the signature check was skipped.
	OnCacheLookup func(hit bool)
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	revoked   func(string) bool
	secret    []byte
	jwks      *keySet // nil when JWKS is disabled
	parser    *jwt.Parser
	validator *jwt.Validator // the parser's claim checks, for cache hits
	algs      []string
	cache     *sigCache // nil when disabled
	onLookup  func(bool)
	now       func() time.Time
}

// NewVerifier returns a Verifier. With a JWKS URL it starts loading the key
// set in the background (retrying until it succeeds, then refreshing), so it
// never blocks start-up on the JWKS endpoint; ctx ends that work.
func NewVerifier(ctx context.Context, c Config) (*Verifier, error) {
	if len(c.Secret) == 0 && c.JWKSURL == "" {
		return nil, errors.New("token: neither a JWKS URL nor an HS256 secret is configured")
	}
	v := &Verifier{revoked: c.Revoked, cache: newSigCache(c.CacheSize), onLookup: c.OnCacheLookup, now: c.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if v.onLookup == nil {
		v.onLookup = func(bool) {}
	}
	if len(c.Secret) > 0 {
		v.secret = append([]byte(nil), c.Secret...)
		v.algs = append(v.algs, AlgHS256)
	}
	if c.JWKSURL != "" {
		ks, err := newKeySet(ctx, c.JWKSURL, c.JWKS)
		if err != nil {
			return nil, err
		}
		v.jwks = ks
		v.algs = append(v.algs, AlgEdDSA, AlgES256, AlgRS256, AlgPS256)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.algs), // never trust the token's own alg
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience)) // aud may be a string or an array
	}
	if c.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(c.Now))
	}
	v.parser = jwt.NewParser(opts...)
	v.validator = jwt.NewValidator(opts...)
	return v, nil
}

// KeysReady reports whether some key is available: the HS256 secret is set or
// the JWKS has loaded at least once.
func (v *Verifier) KeysReady() bool {
	return v.secret != nil || (v.jwks != nil && v.jwks.loaded())
}

// JWKSLoaded reports whether the JWKS has loaded at least once (false when
// JWKS is disabled).
func (v *Verifier) JWKSLoaded() bool { return v.jwks != nil && v.jwks.loaded() }

// Verify checks raw and returns its claims, or an *Error with the reason.
// The claims may be shared with other calls for the same token: read them,
// never modify them.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxTokenBytes {
		return nil, fail(ReasonTooLarge, nil)
	}
	if !compactJWS(raw) {
		return nil, fail(ReasonMalformed, errors.New("not a compact JWS"))
	}
	var c *Claims
	if v.cache == nil {
		var err error
		if c, _, err = v.verifyFull(ctx, raw); err != nil {
			return nil, err
		}
	} else {
		h := hashToken(raw)
		e := v.cache.get(&h, v.now())
		if e != nil && !v.keyStillPublished(ctx, e) {
			v.cache.drop(&h)
			e = nil
		}
		v.onLookup(e != nil)
		if e != nil {
			// Same bytes as a token that verified: only the checks that
			// depend on time or state remain. (sub was checked on entry.)
			if err := v.validator.Validate(e.claims); err != nil {
				return nil, v.classify(nil, err)
			}
			c = e.claims
		} else {
			var err error
			if c, e, err = v.verifyFull(ctx, raw); err != nil {
				return nil, err
			}
			e.exp = c.ExpiresAt.Time // required: the parser refused tokens without it
			v.cache.put(&h, e)
		}
	}
	if c.SID != "" && v.revoked != nil && v.revoked(c.SID) {
		return nil, fail(ReasonRevoked, nil)
	}
	return c, nil
}

// verifyFull parses raw and checks its signature and claims, returning the
// cache entry to remember it by (claims and the key that verified it).
func (v *Verifier) verifyFull(ctx context.Context, raw string) (*Claims, *cacheEntry, error) {
	c := &Claims{}
	e := &cacheEntry{claims: c}
	tok, err := v.parser.ParseWithClaims(raw, c, v.keyFor(ctx, e))
	if err != nil {
		return nil, nil, v.classify(tok, err)
	}
	payload, err := strictClaims(raw)
	if err != nil {
		return nil, nil, fail(ReasonMalformed, err)
	}
	c.payload, c.others = payload, &lazyClaims{}
	if !wire.ValidUserID(c.Subject) {
		if c.Subject == "" {
			return nil, nil, fail(ReasonMissingClaim, errors.New("sub is missing"))
		}
		return nil, nil, fail(ReasonBadSubject, nil)
	}
	return c, e, nil
}

// classify maps a jwt error to a Reason.
func (v *Verifier) classify(tok *jwt.Token, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return te // from keyFor
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ReasonMalformed, err)
	case tok != nil && !v.algAllowed(tok.Header["alg"]):
		return fail(ReasonBadAlg, fmt.Errorf("alg not accepted"))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fail(ReasonBadAlg, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(ReasonBadSignature, nil)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ReasonMissingClaim, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ReasonExpired, nil)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(ReasonNotYetValid, nil)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ReasonBadIssuer, nil)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(ReasonBadAudience, nil)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return fail(ReasonMalformed, err)
	}
	return fail(ReasonMalformed, err)
}

func (v *Verifier) algAllowed(a any) bool {
	s, _ := a.(string)
	for _, x := range v.algs {
		if s == x {
			return true
		}
	}
	return false
}
