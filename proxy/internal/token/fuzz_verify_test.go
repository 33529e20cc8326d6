package token_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/token"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

const fuzzLeeway = 30 * time.Second

// fuzzVerifier verifies with an Ed25519 JWKS key and the HS256 secret, as a
// proxy with both JWKS_URL and JWT_SECRET does.
func fuzzVerifier(f *testing.F) (*token.Verifier, *tokentest.Key) {
	ed := tokentest.NewKey("EdDSA", "fuzz-ed")
	jwks := tokentest.NewJWKS(f, ed)
	v, err := token.NewVerifier(f.Context(), token.Config{
		Secret: tokentest.Secret, JWKSURL: jwks.URL(),
		Issuer: tokentest.Issuer, Audience: tokentest.Audience, Leeway: fuzzLeeway,
		JWKS: token.JWKSConfig{RefreshInterval: time.Hour, UnknownKIDCooldown: time.Hour,
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond},
	})
	if err != nil {
		f.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !v.JWKSLoaded(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("JWKS did not load")
		}
	}
	return v, ed
}

// FuzzVerify signs a fuzzed JOSE header and payload with the real Ed25519
// key, the real HS256 secret or a stranger's key, and checks that whatever
// Verify accepts passes an independent reading of the rules: a signature by
// a key that fits the header's alg, no key-naming header parameters, a
// numeric exp in the future, nbf/iat not in the future, our iss and aud, and
// a sub that may be sent as X-User-ID.
func FuzzVerify(f *testing.F) {
	v, ed := fuzzVerifier(f)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().Unix()
	claims := `{"sub":"u1","iss":"` + tokentest.Issuer + `","aud":"` + tokentest.Audience + `","iat":` + itoa(now) + `,"exp":` + itoa(now+900) + `}`
	for _, s := range []struct {
		header, payload string
		mode            uint8
	}{
		{`{"alg":"EdDSA","kid":"fuzz-ed"}`, claims, 0},
		{`{"alg":"HS256"}`, claims, 1},
		{`{"alg":"EdDSA","kid":"fuzz-ed"}`, claims, 2},
		{`{"alg":"none"}`, claims, 3},
		{`{"alg":"HS256","kid":"fuzz-ed"}`, claims, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed","jku":"http://127.0.0.1:1/"}`, claims, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed","crit":["x"]}`, claims, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed"}`, `{"sub":"u1","iss":"` + tokentest.Issuer + `","aud":["x","` + tokentest.Audience + `"],"exp":` + itoa(now+60) + `}`, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed"}`, `{"sub":"u 1","iss":"` + tokentest.Issuer + `","aud":"` + tokentest.Audience + `","exp":` + itoa(now+60) + `}`, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed"}`, `{"sub":"u1","iss":"` + tokentest.Issuer + `","aud":"` + tokentest.Audience + `","exp":` + itoa(now+60) + `,"nbf":` + itoa(now+3600) + `}`, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed"}`, `{"sub":"u1","iss":"` + tokentest.Issuer + `","aud":"` + tokentest.Audience + `","exp":1e10}`, 0},
		{`{"alg":"EdDSA","kid":"fuzz-ed","alg":"HS256"}`, claims, 1},
	} {
		f.Add(s.header, s.payload, s.mode)
	}
	f.Fuzz(func(t *testing.T, header, payload string, mode uint8) {
		input := b64(header) + "." + b64(payload)
		var sig []byte
		switch mode % 4 {
		case 0:
			sig = ed25519.Sign(ed.Priv.(ed25519.PrivateKey), []byte(input))
		case 1:
			m := hmac.New(sha256.New, tokentest.Secret)
			m.Write([]byte(input))
			sig = m.Sum(nil)
		case 2:
			sig = ed25519.Sign(stranger, []byte(input))
		}
		raw := input + "." + base64.RawURLEncoding.EncodeToString(sig)
		checkAccepted(t, v, ed, raw)
	})
}

// FuzzVerifyRaw feeds Verify arbitrary strings: it must never panic, and
// anything it accepts must pass the same independent checks.
func FuzzVerifyRaw(f *testing.F) {
	v, ed := fuzzVerifier(f)
	f.Add("a.b.c")
	f.Add("")
	f.Add("..")
	f.Add(strings.Repeat("a.", 5000))
	f.Add(ed.Sign(f, tokentest.Claims("u1"), nil))
	f.Add(tokentest.NewKey("HS256", "").Sign(f, tokentest.Claims("u1"), nil))
	f.Fuzz(func(t *testing.T, raw string) { checkAccepted(t, v, ed, raw) })
}

func checkAccepted(t *testing.T, v *token.Verifier, ed *tokentest.Key, raw string) {
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		if token.ReasonOf(err) == "" {
			t.Fatalf("error without a reason: %v", err)
		}
		if strings.Contains(err.Error(), raw) && len(raw) > 8 {
			t.Fatalf("error text contains the token: %v", err)
		}
		return
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(raw) > token.MaxTokenBytes {
		t.Fatalf("accepted a token of %d parts, %d bytes", len(parts), len(raw))
	}
	hdr, pay := decodeObject(t, parts[0]), claimsLikeGo(t, parts[1])
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("accepted a signature that is not base64url: %q", parts[2])
	}
	for _, h := range []string{"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"} {
		if _, ok := hdr[h]; ok {
			t.Fatalf("accepted a token with header %q", h)
		}
	}
	input := []byte(parts[0] + "." + parts[1])
	switch hdr["alg"] {
	case "EdDSA":
		if hdr["kid"] != ed.KID || !ed25519.Verify(ed.Pub.(ed25519.PublicKey), input, sig) {
			t.Fatalf("accepted EdDSA not signed by key %s: header %v", ed.KID, hdr)
		}
	case "HS256":
		m := hmac.New(sha256.New, tokentest.Secret)
		m.Write(input)
		if !hmac.Equal(m.Sum(nil), sig) {
			t.Fatalf("accepted HS256 not signed with the secret")
		}
	default:
		t.Fatalf("accepted alg %v", hdr["alg"])
	}
	now := float64(time.Now().Unix())
	leeway := fuzzLeeway.Seconds() + 5 // the check runs a moment after Verify
	// Claim names and NumericDate are read as golang-jwt reads them (any
	// letter case, quoted numbers too: open findings in SECURITY.md), so the
	// fuzzer looks past them for anything else.
	exp, ok := number(pay["exp"])
	if !ok || exp < now-leeway {
		t.Fatalf("accepted exp %#v (want a JSON number not in the past)", pay["exp"])
	}
	for _, k := range []string{"nbf", "iat"} {
		if x, present := pay[k]; present {
			if n, ok := number(x); !ok || n > now+leeway {
				t.Fatalf("accepted %s %#v (want a JSON number not in the future)", k, x)
			}
		}
	}
	if pay["iss"] != tokentest.Issuer {
		t.Fatalf("accepted iss %#v", pay["iss"])
	}
	if !audienceHas(pay["aud"], tokentest.Audience) {
		t.Fatalf("accepted aud %#v", pay["aud"])
	}
	sub, _ := pay["sub"].(string)
	if !wire.ValidUserID(sub) || c.Subject != sub {
		t.Fatalf("accepted sub %#v, claims say %q", pay["sub"], c.Subject)
	}
}

func decodeObject(t *testing.T, seg string) map[string]any {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("accepted a segment that is not base64url: %q", seg)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		t.Fatalf("accepted a segment that is not a JSON object: %q", b)
	}
	return m
}

func number(x any) (float64, bool) {
	var n json.Number
	switch v := x.(type) {
	case json.Number:
		n = v
	case string:
		n = json.Number(v)
	default:
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// claimsLikeGo decodes the payload's registered claims the way
// encoding/json fills a struct: a key matches a claim name in any letter
// case and the last matching key wins.
func claimsLikeGo(t *testing.T, seg string) map[string]any {
	decodeObject(t, seg) // an object, or the test fails
	b, _ := base64.RawURLEncoding.DecodeString(seg)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	out := map[string]any{}
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	for d.More() {
		k, _ := d.Token()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"exp", "nbf", "iat", "iss", "aud", "sub"} {
			if key, _ := k.(string); strings.EqualFold(key, name) {
				out[name] = v
			}
		}
	}
	return out
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
