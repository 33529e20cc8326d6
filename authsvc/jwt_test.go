package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// verifyJWT checks an EdDSA compact JWS against a JWKS document by hand,
// with crypto/ed25519 only: an independent verifier, not authsvc's key code.
func verifyJWT(t testing.TB, token string, jwks []byte) (header, claims map[string]any) {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("jwks %s: %v", jwks, err)
	}
	header, claims, signed, sig := splitJWT(t, token)
	if header["alg"] != "EdDSA" {
		t.Fatalf("alg = %v, want EdDSA", header["alg"])
	}
	for _, k := range set.Keys {
		if k["kid"] != header["kid"] {
			continue
		}
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" {
			t.Fatalf("jwk = %v", k)
		}
		if _, ok := k["d"]; ok {
			t.Fatalf("JWKS publishes a private key")
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("jwk x = %q", k["x"])
		}
		if !ed25519.Verify(ed25519.PublicKey(x), []byte(signed), sig) {
			t.Fatalf("signature does not verify with kid %v", header["kid"])
		}
		return header, claims
	}
	t.Fatalf("kid %v not in JWKS %s", header["kid"], jwks)
	return nil, nil
}

func splitJWT(t testing.TB, token string) (header, claims map[string]any, signed string, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", token)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return header, claims, parts[0] + "." + parts[1], sig
}

func fetchJWKS(t testing.TB, base string) []byte {
	t.Helper()
	r := (&browser{t: t, c: http.DefaultClient, base: base}).do("GET", "/api/auth/jwks", nil)
	if r.status != 200 {
		t.Fatalf("jwks = %d %s", r.status, r.body)
	}
	return r.body
}

// checkClaims asserts SPEC.md's claim set: exactly sub, iss, aud, iat, exp,
// jti, sid, and no personal data.
func checkClaims(t testing.TB, claims map[string]any, userID, baseURL string, ttlSeconds float64) {
	t.Helper()
	want := []string{"aud", "exp", "iat", "iss", "jti", "sid", "sub"}
	if len(claims) != len(want) {
		t.Errorf("claims = %v, want exactly %v", claims, want)
	}
	for _, k := range want {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing in %v", k, claims)
		}
	}
	if claims["sub"] != userID {
		t.Errorf("sub = %v, want %v", claims["sub"], userID)
	}
	if claims["iss"] != baseURL || claims["aud"] != baseURL {
		t.Errorf("iss = %v, aud = %v, want %s", claims["iss"], claims["aud"], baseURL)
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if exp-iat != ttlSeconds {
		t.Errorf("exp - iat = %v, want %v", exp-iat, ttlSeconds)
	}
	for _, v := range claims {
		if s := fmt.Sprint(v); strings.Contains(s, "@") {
			t.Errorf("claims carry personal data: %v", claims)
		}
	}
}

func TestIssuedJWTVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	in := startDefault(t, "JWT_TTL", "7m")
	b := newBrowser(t, in)
	r := b.signUp("jwt@example.com", "sturdy-otter-42")
	var su struct{ User struct{ ID string } }
	r.json(t, &su)
	jwks := fetchJWKS(t, in.base)

	r = b.do("GET", "/api/auth/token", nil)
	var tok struct{ Token string }
	r.json(t, &tok)
	header, claims := verifyJWT(t, tok.Token, jwks)
	checkClaims(t, claims, su.User.ID, "http://localhost:8080", 420)
	if header["typ"] != "JWT" || header["kid"] == "" {
		t.Errorf("header = %v", header)
	}
	// The access cookie and set-auth-jwt carry verifiable tokens too.
	verifyJWT(t, b.cookie("better-auth.access_token"), jwks)
	r = b.do("GET", "/api/auth/get-session", nil)
	_, c2 := verifyJWT(t, r.header.Get("Set-Auth-Jwt"), jwks)
	if c2["jti"] == claims["jti"] {
		t.Errorf("jti reused: %v", c2["jti"])
	}
}

func TestHS256ModeWithJWTSecret(t *testing.T) {
	t.Parallel()
	const secret = "jwt-secret-shared-with-the-proxy-0123456789"
	in := startDefault(t, "JWT_SECRET", secret)
	b := newBrowser(t, in)
	b.signUp("hs@example.com", "sturdy-otter-42")
	r := b.do("GET", "/api/auth/token", nil)
	var tok struct{ Token string }
	r.json(t, &tok)
	header, claims, signed, sig := splitJWT(t, tok.Token)
	if header["alg"] != "HS256" || header["kid"] == "" {
		t.Errorf("header = %v", header)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	if !hmac.Equal(m.Sum(nil), sig) {
		t.Errorf("HS256 signature does not verify with JWT_SECRET")
	}
	if claims["sub"] == "" {
		t.Errorf("claims = %v", claims)
	}
	if got := strings.TrimSpace(string(fetchJWKS(t, in.base))); got != `{"keys":[]}` {
		t.Errorf("jwks in HS256 mode = %s, want no keys", got)
	}
}
