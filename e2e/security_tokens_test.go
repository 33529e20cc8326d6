package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Every kind of forged or doctored token, through the proxy, is 401 and never
// reaches the backend. authsvc signs with a key file here, so the suite holds
// the real signing key: claim checks (exp, nbf, iss, aud, sub) are tested
// with genuine signatures, and a control row proves the forging is right.
func TestAttackForgedTokens(t *testing.T) {
	t.Parallel()
	realKey, path := keyFile(t)
	s := StartStack(t, Options{RecordBackend: true, AuthEnv: []string{"JWT_PRIVATE_KEY_FILE=" + path}})
	victim := s.NewUser(t)
	victim.SignUp("victim@example.com", pw)
	uid := victim.userID()
	issued := victim.Token()
	jwks := s.JWKS(t)
	kid, x := jwks[0].Kid, jwks[0].X
	if h := headerOf(t, issued); h["kid"] != kid {
		t.Fatalf("issued kid %v, JWKS kid %s: the key file is not the signing key", h["kid"], kid)
	}
	pub, _ := b64.DecodeString(x)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	foreignPub := foreign.Public().(ed25519.PublicKey)
	foreignJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(foreignPub), "kid": kid, "alg": "EdDSA"}

	// Key-URL headers point here; the proxy must never fetch them.
	var fetched atomic.Int64
	keyURL := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{foreignJWK}})
	}))
	defer keyURL.Close()
	cert := selfSignedCert(t, foreign)

	now := time.Now()
	hdr := func(kv ...any) map[string]any {
		h := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"sub": uid, "iss": s.URL, "aud": s.URL, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "forged", "sid": "forged"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	real, alien := edSigner(realKey), edSigner(foreign)

	// Control: a token built here with the real key is accepted, so every
	// rejection below is about the one thing each row changes.
	if r := bearerGet(t, s.URL, "/api/v1/todos", jws(hdr(), claims(), real)); r.Status != http.StatusOK {
		t.Fatalf("control token signed with the real key: %s", r)
	}

	parts := strings.Split(issued, ".")
	tampered := parts[0] + "." + b64.EncodeToString([]byte(strings.Replace(string(mustB64(t, parts[1])), uid, "someone-else", 1))) + "." + parts[2]
	other := s.NewUser(t)
	other.SignUp("mallory@example.com", pw)
	malloryTok := strings.Split(other.Token(), ".")

	for _, tt := range []struct{ name, tok string }{
		// alg confusion
		{"alg none, no signature", jws(hdr("alg", "none"), claims(), nil)},
		{"alg none, a signature", jws(hdr("alg", "none"), claims(), constSigner("x"))},
		{"alg None", jws(hdr("alg", "None"), claims(), nil)},
		{"alg NONE with real signature", jws(hdr("alg", "NONE"), claims(), real)},
		{"alg missing", jws(hdr("alg", nil), claims(), real)},
		{"alg empty", jws(hdr("alg", ""), claims(), real)},
		{"HS256 keyed with the public key bytes", jws(hdr("alg", "HS256"), claims(), hsSigner(pub))},
		{"HS256 keyed with the base64 x", jws(hdr("alg", "HS256"), claims(), hsSigner([]byte(x)))},
		{"HS256 keyed with the JWK JSON", jws(hdr("alg", "HS256"), claims(), hsSigner(mustJSON(jwks[0])))},
		{"HS256 keyed with the PEM public key", jws(hdr("alg", "HS256"), claims(), hsSigner(pemPublic(t, pub)))},
		{"HS256 keyed with empty secret", jws(hdr("alg", "HS256"), claims(), hsSigner(nil))},
		{"HS512 keyed with the public key", jws(hdr("alg", "HS512"), claims(), hsSigner(pub))},
		{"ES256 on the Ed25519 kid", jws(hdr("alg", "ES256"), claims(), real)},
		{"RS256 on the Ed25519 kid", jws(hdr("alg", "RS256"), claims(), real)},
		{"Ed25519 alg name", jws(hdr("alg", "Ed25519"), claims(), real)},
		// foreign keys
		{"foreign key with the real kid", jws(hdr(), claims(), alien)},
		{"foreign key without kid", jws(hdr("kid", nil), claims(), alien)},
		{"foreign key with an unknown kid", jws(hdr("kid", "attacker"), claims(), alien)},
		{"embedded jwk, real kid", jws(hdr("jwk", foreignJWK), claims(), alien)},
		{"embedded jwk, no kid", jws(hdr("kid", nil, "jwk", foreignJWK), claims(), alien)},
		{"embedded jwk, signed by the real key", jws(hdr("jwk", foreignJWK), claims(), real)},
		{"jku to attacker, real kid", jws(hdr("jku", keyURL.URL+"/jwks"), claims(), alien)},
		{"jku to attacker, attacker kid", jws(hdr("kid", "attacker", "jku", keyURL.URL+"/jwks"), claims(), alien)},
		{"jku to attacker, signed by the real key", jws(hdr("jku", keyURL.URL+"/jwks"), claims(), real)},
		{"x5u to attacker", jws(hdr("kid", "attacker", "x5u", keyURL.URL+"/cert.pem"), claims(), alien)},
		{"x5c self-signed", jws(hdr("kid", nil, "x5c", []string{cert}), claims(), alien)},
		{"crit extension, real key", jws(hdr("crit", []string{"exp"}), claims(), real)},
		{"kid path traversal", jws(hdr("kid", "../../../../dev/null"), claims(), hsSigner(nil))},
		{"kid SQL injection", jws(hdr("kid", "x' OR '1'='1"), claims(), alien)},
		{"kid as a number", jws(hdr("kid", 1), claims(), alien)},
		{"duplicate kid, foreign key", jwsRaw(`{"alg":"EdDSA","kid":"attacker","kid":"`+kid+`"}`, string(mustJSON(claims())), alien)},
		{"duplicate alg none then EdDSA", jwsRaw(`{"alg":"EdDSA","kid":"`+kid+`","alg":"none"}`, string(mustJSON(claims())), nil)},
		// claims, genuinely signed
		{"expired an hour ago", jws(hdr(), claims("exp", now.Add(-time.Hour).Unix()), real)},
		{"expired beyond the leeway", jws(hdr(), claims("exp", now.Add(-2*time.Minute).Unix()), real)},
		{"nbf in an hour", jws(hdr(), claims("nbf", now.Add(time.Hour).Unix()), real)},
		{"iat in an hour", jws(hdr(), claims("iat", now.Add(time.Hour).Unix()), real)},
		{"wrong iss", jws(hdr(), claims("iss", "https://evil.example"), real)},
		{"iss missing", jws(hdr(), claims("iss", nil), real)},
		{"wrong aud", jws(hdr(), claims("aud", "https://evil.example"), real)},
		{"aud list without ours", jws(hdr(), claims("aud", []string{"https://a.example", "https://b.example"}), real)},
		{"aud missing", jws(hdr(), claims("aud", nil), real)},
		{"exp missing", jws(hdr(), claims("exp", nil), real)},
		{"exp as a string", jws(hdr(), claims("exp", "9999999999"), real)},
		{"claim names in upper case", jwsRaw(`{"alg":"EdDSA","kid":"`+kid+`"}`, `{"SUB":"`+uid+`","ISS":"`+s.URL+`","AUD":"`+s.URL+`","EXP":`+fmt.Sprint(now.Add(time.Minute).Unix())+`}`, real)},
		{"sub then SUB (last case-folded key wins in Go)", jwsRaw(`{"alg":"EdDSA","kid":"`+kid+`"}`, `{"sub":"`+uid+`","iss":"`+s.URL+`","aud":"`+s.URL+`","exp":`+fmt.Sprint(now.Add(time.Minute).Unix())+`,"SUB":"someone-else"}`, real)},
		{"exp null", jwsRaw(`{"alg":"EdDSA","kid":"`+kid+`"}`, `{"sub":"`+uid+`","iss":"`+s.URL+`","aud":"`+s.URL+`","exp":null}`, real)},
		{"sub missing", jws(hdr(), claims("sub", nil), real)},
		{"sub empty", jws(hdr(), claims("sub", ""), real)},
		{"sub with a comma", jws(hdr(), claims("sub", uid+","+uid), real)},
		{"sub with a space", jws(hdr(), claims("sub", "a b"), real)},
		{"sub with CRLF header injection", jws(hdr(), claims("sub", uid+"\r\nX-User-Id: admin"), real)},
		{"sub non-ASCII", jws(hdr(), claims("sub", "admín"), real)},
		{"sub 129 characters", jws(hdr(), claims("sub", strings.Repeat("a", 129)), real)},
		{"sub a number", jws(hdr(), claims("sub", 42), real)},
		{"payload not JSON object", jwsRaw(`{"alg":"EdDSA","kid":"`+kid+`"}`, `["`+uid+`"]`, real)},
		// doctored real tokens
		{"issued token with sub changed", tampered},
		{"victim payload with mallory's signature", parts[0] + "." + parts[1] + "." + malloryTok[2]},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4]},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"signature in std base64 with padding", parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "=="},
		{"four segments", issued + ".AAAA"},
		{"JWE-shaped", parts[0] + ".." + parts[1] + ".." + parts[2]},
		{"over 8 KiB, real key", jws(hdr(), claims("pad", strings.Repeat("a", 9000)), real)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := marker(tt.name)
			r := bearerGet(t, s.URL, "/api/v1/todos?"+m, tt.tok)
			if r.Status != http.StatusUnauthorized {
				t.Errorf("bearer: %s, want 401", r)
			} else if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("bearer: WWW-Authenticate %q, want error=\"invalid_token\"", r.Header.Get("WWW-Authenticate"))
			}
			s.Seen.AssertUnseen(t, "bearer", r, m)
			m = marker(tt.name + " cookie")
			r = bearerGet(t, s.URL, "/api/v1/todos?"+m, "", "Cookie", "better-auth.access_token="+tt.tok)
			if r.Status != http.StatusUnauthorized {
				t.Errorf("cookie: %s, want 401", r)
			}
			s.Seen.AssertUnseen(t, "cookie", r, m)
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("the proxy fetched a token-named key URL %d times", n)
	}
	// The token's own jwt in a query parameter is not a token source.
	m := marker("query token")
	r := bearerGet(t, s.URL, "/api/v1/todos?access_token="+issued+"&token="+issued+"&"+m, "")
	if r.Status != http.StatusUnauthorized {
		t.Errorf("token in the query: %s, want 401", r)
	}
	s.Seen.AssertUnseen(t, "token in the query", r, m)
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func pemPublic(t testing.TB, pub []byte) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func selfSignedCert(t testing.TB, k ed25519.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}
