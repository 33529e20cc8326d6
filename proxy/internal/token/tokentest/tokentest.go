// Package tokentest provides signing keys for every accepted algorithm and a
// JWKS endpoint served by an httptest server, so that proxy tests never need
// authsvc. It is for tests only.
package tokentest

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Secret is an HS256 secret of 32+ bytes.
var Secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// Issuer and Audience are the iss and aud of tokens made by Claims.
const (
	Issuer   = "http://localhost:8080"
	Audience = "http://localhost:8080"
)

// Key is a signing key with its kid and algorithm.
type Key struct {
	KID    string
	Alg    string
	Method jwt.SigningMethod
	Priv   any // crypto.Signer, or []byte for HS256
	Pub    any
}

// rsaKey is generated once per test binary: 2048-bit generation is slow.
var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
)

func sharedRSA() *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaPriv
}

// NewKey returns a fresh key for alg (EdDSA, ES256, RS256, PS256 or HS256)
// with the given kid. RSA keys are shared within the test binary.
func NewKey(alg, kid string) *Key {
	k := &Key{KID: kid, Alg: alg, Method: jwt.GetSigningMethod(alg)}
	switch alg {
	case "EdDSA":
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		k.Priv, k.Pub = priv, pub
	case "ES256":
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k.Priv, k.Pub = priv, &priv.PublicKey
	case "RS256", "PS256":
		priv := sharedRSA()
		k.Priv, k.Pub = priv, &priv.PublicKey
	case "HS256":
		k.Priv, k.Pub = Secret, Secret
	default:
		panic("tokentest: unknown alg " + alg)
	}
	return k
}

// Claims returns valid claims for sub: iss, aud, iat now, exp in 15 minutes.
func Claims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub, "iss": Issuer, "aud": Audience,
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "j1", "sid": "s1",
	}
}

// Sign signs claims with k, setting kid (unless HS256 or kid is empty) and
// then any extra header parameters (a nil value deletes one).
func (k *Key) Sign(t testing.TB, claims jwt.Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.Method, claims)
	if k.KID != "" {
		tok.Header["kid"] = k.KID
	}
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	s, err := tok.SignedString(k.Priv)
	if err != nil {
		t.Fatalf("sign %s: %v", k.Alg, err)
	}
	return s
}

// JWKS is a JWKS endpoint whose key set and availability tests change.
type JWKS struct {
	*httptest.Server
	hits atomic.Int64
	down atomic.Bool
	mu   sync.Mutex
	body []byte
}

// NewJWKS serves keys (public parts, with kid and alg) until the test ends.
func NewJWKS(t testing.TB, keys ...*Key) *JWKS {
	t.Helper()
	j := &JWKS{}
	j.SetKeys(t, keys...)
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.hits.Add(1)
		if j.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		j.mu.Lock()
		b := j.body
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(j.Close)
	return j
}

// URL of the key set.
func (j *JWKS) URL() string { return j.Server.URL + "/api/auth/jwks" }

// Hits counts requests served (or refused while down).
func (j *JWKS) Hits() int64 { return j.hits.Load() }

// SetDown makes the endpoint answer 503 (true) or serve keys again.
func (j *JWKS) SetDown(down bool) { j.down.Store(down) }

// SetKeys replaces the served key set.
func (j *JWKS) SetKeys(t testing.TB, keys ...*Key) {
	t.Helper()
	st := jwkset.NewMemoryStorage()
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Pub, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.Alg), USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatalf("jwk for %s: %v", k.Alg, err)
		}
		if err := st.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	b, err := st.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.body = b
	j.mu.Unlock()
}

// NewKeyWithSecret returns an HS256 key over secret (for wrong-secret and
// key-confusion tokens).
func NewKeyWithSecret(alg string, secret []byte) *Key {
	return &Key{Alg: alg, Method: jwt.GetSigningMethod(alg), Priv: secret, Pub: secret}
}
