// Package keys holds the keys authsvc signs JWTs with and the JWKS it
// publishes. Ed25519 keys are generated on first start, sealed with a key
// derived from AUTH_SECRET and stored in Postgres, so every replica signs
// with the same key; each replica caches them and reloads periodically so a
// rotation made by `authsvc keys rotate` reaches running replicas. With an
// HMAC secret (JWT_SECRET) tokens are HS256 instead and the JWKS is empty.
package keys

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"
	"go.uber.org/zap"
)

// Options configures a Set.
type Options struct {
	DB         bun.IDB // unused in HS256 mode
	AuthSecret string  // seals stored private keys
	// HMACSecret, when set, switches to HS256 tokens signed with it.
	HMACSecret string
	// FileKey, when set, signs every token instead of the stored keys, which
	// stay published until their tokens expire.
	FileKey ed25519.PrivateKey
	// TokenTTL and Margin decide how long a superseded key stays published.
	TokenTTL, Margin time.Duration
	Log              *zap.Logger
}

// JWK is one public key as published in the JWKS (RFC 8037 OKP).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

type key struct {
	kid         string
	pub         ed25519.PublicKey
	priv        ed25519.PrivateKey
	activatesAt time.Time
}

// Set signs tokens and lists the public keys. Safe for concurrent use.
type Set struct {
	opt    Options
	sealer *sealer
	hmac   []byte
	hmacID string
	now    func() time.Time

	mu   sync.RWMutex
	keys []key // sorted by activatesAt
}

// Open prepares a Set: in EdDSA mode it creates the first key if there is
// none (safe under concurrent replicas) and loads every stored key.
func Open(ctx context.Context, opt Options) (*Set, error) {
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	s := &Set{opt: opt, now: time.Now}
	if opt.HMACSecret != "" {
		s.hmac = []byte(opt.HMACSecret)
		// A kid that names the secret without revealing it, so verifiers
		// can tell secrets apart during a change.
		h := sha256.Sum256([]byte("gatehouse-hs256-kid:" + opt.HMACSecret))
		s.hmacID = "hs256-" + base64.RawURLEncoding.EncodeToString(h[:9])
		return s, nil
	}
	var err error
	if s.sealer, err = newSealer(opt.AuthSecret); err != nil {
		return nil, err
	}
	created, err := ensureKey(ctx, opt.DB, s.sealer)
	if err != nil {
		return nil, fmt.Errorf("keys: first key: %w", err)
	}
	if created {
		opt.Log.Info("generated the first signing key")
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the stored keys again. On error the cached keys stay in use,
// so a database outage does not stop token issuance.
func (s *Set) Reload(ctx context.Context) error {
	if s.hmac != nil {
		return nil
	}
	rows, err := loadRows(ctx, s.opt.DB)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	s.mu.RLock()
	known := make(map[string]key, len(s.keys))
	for _, k := range s.keys {
		known[k.kid] = k
	}
	s.mu.RUnlock()
	keys := make([]key, 0, len(rows))
	for _, r := range rows {
		if k, ok := known[r.KID]; ok && k.activatesAt.Equal(r.ActivatesAt) {
			keys = append(keys, k) // skip unsealing keys we already hold
			continue
		}
		seed, err := s.sealer.open(r.SealedKey, r.KID)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", r.KID, err)
		}
		if len(seed) != ed25519.SeedSize || len(r.PublicKey) != ed25519.PublicKeySize {
			return fmt.Errorf("keys: %s: stored key has the wrong size", r.KID)
		}
		keys = append(keys, key{kid: r.KID, pub: r.PublicKey, priv: ed25519.NewKeyFromSeed(seed), activatesAt: r.ActivatesAt})
	}
	if len(keys) == 0 && s.opt.FileKey == nil {
		return errors.New("keys: no signing key stored")
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	return nil
}

// Run reloads every interval until ctx ends, logging failures.
func (s *Set) Run(ctx context.Context, interval time.Duration) {
	if s.hmac != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.Reload(rctx); err != nil && ctx.Err() == nil {
				s.opt.Log.Warn("reloading signing keys failed; keeping cached keys", zap.Error(err))
			}
			cancel()
		}
	}
}

// Alg is the JWS algorithm of issued tokens: EdDSA or HS256.
func (s *Set) Alg() string {
	if s.hmac != nil {
		return jwt.SigningMethodHS256.Alg()
	}
	return jwt.SigningMethodEdDSA.Alg()
}

// Sign returns a compact JWS of claims with the active key and its kid.
func (s *Set) Sign(claims jwt.MapClaims) (string, error) {
	if s.hmac != nil {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		t.Header["kid"] = s.hmacID
		return t.SignedString(s.hmac)
	}
	kid, priv, err := s.active()
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = kid
	return t.SignedString(priv)
}

func (s *Set) active() (string, ed25519.PrivateKey, error) {
	if fk := s.opt.FileKey; fk != nil {
		return Thumbprint(fk.Public().(ed25519.PublicKey)), fk, nil
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !s.keys[i].activatesAt.After(now) {
			return s.keys[i].kid, s.keys[i].priv, nil
		}
	}
	return "", nil, errors.New("keys: no active signing key")
}

// JWKS lists the public keys a verifier needs: keys not yet active (so
// proxies learn them before the first token), the active one, and
// superseded ones until TokenTTL+Margin after their successor activated.
// In HS256 mode it is empty: the secret is never published.
func (s *Set) JWKS() []JWK {
	out := []JWK{}
	if s.hmac != nil {
		return out
	}
	if fk := s.opt.FileKey; fk != nil {
		out = append(out, toJWK(fk.Public().(ed25519.PublicKey)))
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, k := range s.keys {
		if i+1 < len(s.keys) {
			next := s.keys[i+1].activatesAt
			if !next.After(now) && now.After(next.Add(s.opt.TokenTTL+s.opt.Margin)) {
				continue
			}
		}
		if s.opt.FileKey != nil && out[0].Kid == k.kid {
			continue
		}
		out = append(out, toJWK(k.pub))
	}
	return out
}

func toJWK(pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: Thumbprint(pub), Alg: "EdDSA", Use: "sig"}
}

// ParsePrivateKeyPEM reads a PKCS#8 Ed25519 private key ("PRIVATE KEY" PEM
// block), the format of `openssl genpkey -algorithm ed25519`.
func ParsePrivateKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("want a PEM \"PRIVATE KEY\" block (PKCS#8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS#8 private key")
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return ed, nil
}
