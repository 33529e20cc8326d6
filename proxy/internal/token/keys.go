package token

// keys.go: which key may verify a token. Each algorithm is pinned to one
// key type, the token's JOSE header may not name its own key, and a cached
// verification holds only while its key is still the one published.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithms accepted. JWKS keys sign with the asymmetric ones; the shared
// secret only with HS256. Which key type each one needs is pinned in keyFor.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
	AlgHS256 = "HS256"
)

// forbiddenHeaders are JOSE header parameters that would let a token name its
// own key or key location (RFC 7515 §4.1.2–4.1.6) or demand extensions we do
// not implement (crit, §4.1.11). A token carrying any of them is rejected
// before any key lookup, so nothing is ever fetched on a token's say-so.
var forbiddenHeaders = []string{"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// minRSABits rejects toy RSA keys even if the JWKS publishes one.
const minRSABits = 2048

// keyStillPublished reports whether the key that verified a cached token is
// still the one published under its kid. The HS256 secret never changes.
func (v *Verifier) keyStillPublished(ctx context.Context, e *cacheEntry) bool {
	if e.kid == "" {
		return e.alg == AlgHS256 && v.secret != nil
	}
	key, err := v.jwks.key(ctx, e.kid, e.alg)
	return err == nil && keyFits(e.alg, key) && sameKey(e.key, key)
}

// keyFor returns the key for a token whose alg already passed
// WithValidMethods, pinning each algorithm to one key type so that no key can
// be used with another algorithm (the classic HS256-with-the-RSA-public-key
// confusion, or RS256 vs PS256 on a key published for one of them).
//
// The key it returns, with its kid and alg, is recorded in used.
func (v *Verifier) keyFor(ctx context.Context, used *cacheEntry) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		for _, h := range forbiddenHeaders {
			if _, ok := t.Header[h]; ok {
				return nil, fail(ReasonForbiddenHeader, fmt.Errorf("header parameter %q", h))
			}
		}
		alg := t.Method.Alg()
		used.alg = alg
		if alg == AlgHS256 {
			return v.secret, nil // WithValidMethods admits HS256 only when a secret is set
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, fail(ReasonUnknownKID, errors.New("no kid"))
		}
		key, err := v.jwks.key(ctx, kid, alg)
		if err != nil {
			return nil, err
		}
		if !keyFits(alg, key) {
			return nil, fail(ReasonBadAlg, fmt.Errorf("alg %s does not fit the key with that kid", alg))
		}
		used.kid, used.key = kid, key
		return key, nil
	}
}

func keyFits(alg string, key any) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return alg == AlgEdDSA && len(k) == ed25519.PublicKeySize
	case *ecdsa.PublicKey:
		return alg == AlgES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return (alg == AlgRS256 || alg == AlgPS256) && k.N.BitLen() >= minRSABits
	}
	return false
}
