package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer, audience and key id of the benchmark's own tokens; the proxy is
// started with JWT_ISSUER and JWT_AUDIENCE set to match, so the rows pay for
// the same claim checks as production.
const (
	benchIssuer   = "http://gatebench.invalid"
	benchAudience = "http://gatebench.invalid"
	benchKID      = "gatebench-ed25519-1"
	benchSubject  = "bench-user"
)

// signer makes the tokens of the micro rows: EdDSA with a fresh Ed25519 key
// (published as a JWKS by the upstream) and HS256 with a random secret.
type signer struct {
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	secret string // hex, 64 characters: JWT_SECRET wants 32+ bytes
	now    time.Time
}

func newSigner() (*signer, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &signer{priv: priv, pub: pub, secret: hex.EncodeToString(b), now: time.Now()}, nil
}

// jwks is the public key as a JSON Web Key Set (RFC 8037 OKP key).
func (s *signer) jwks() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": benchKID,
		"x": base64.RawURLEncoding.EncodeToString(s.pub),
	}}})
	return b
}

// token signs the claims sub, iss, aud, iat, exp (two hours ahead, beyond
// any run) and, for n >= 0, a jti of n so that every fresh token differs.
func (s *signer) token(alg string, n int) (string, error) {
	claims := jwt.MapClaims{
		"sub": benchSubject, "iss": benchIssuer, "aud": benchAudience,
		"iat": s.now.Unix(), "exp": s.now.Add(2 * time.Hour).Unix(),
	}
	if n >= 0 {
		claims["jti"] = strconv.Itoa(n)
	}
	switch alg {
	case "EdDSA":
		t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		t.Header["kid"] = benchKID
		return t.SignedString(s.priv)
	case "HS256":
		return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(s.secret))
	}
	return "", fmt.Errorf("unknown algorithm %q", alg)
}

// writeTokens signs n distinct tokens (on every core) and writes them, one
// a line, to one file per wrk phase and thread: prefix-warm-<t>.txt gets a
// fifth of them, prefix-run-<t>.txt the rest. Separate files keep each
// thread's Lua init short: wrk starts a thread's load as soon as that thread
// is initialised, before the clock it divides by starts.
func (s *signer) writeTokens(prefix, alg string, n, threads int) error {
	toks := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				t, err := s.token(alg, i)
				if err != nil {
					errs[w] = err
					return
				}
				toks[i] = t
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	warm := n / 5
	for _, ph := range []struct {
		name string
		toks []string
	}{{"warm", toks[:warm]}, {"run", toks[warm:]}} {
		per := len(ph.toks) / threads
		for t := range threads {
			path := fmt.Sprintf("%s-%s-%d.txt", prefix, ph.name, t)
			if err := writeLines(path, ph.toks[t*per:(t+1)*per]); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeLines(path string, lines []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for _, l := range lines {
		bw.WriteString(l)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
