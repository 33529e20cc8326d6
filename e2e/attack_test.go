package e2e

import (
	"bufio"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Helpers for the adversarial suite (security_*_test.go): raw requests that
// Go's client would normalise, hand-built JWS tokens, and the facts of a
// signed-in victim.

var b64 = base64.RawURLEncoding

// rawDo writes req (a complete HTTP/1.1 request, CRLFs included) on a fresh
// connection to addr and reads one response. A connection closed without an
// answer is status 0.
func rawDo(t testing.TB, addr, req string) Resp {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Write while reading: a server may answer (and close) before it has
	// read a large request.
	go func() { _, _ = io.WriteString(c, req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return Resp{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return Resp{resp.StatusCode, resp.Header, b}
}

// rawReq is rawDo for "METHOD target" with Host, Connection: close, extra
// header lines (each "Name: value", sent exactly as given) and a body with
// its Content-Length when body is not empty.
func rawReq(t testing.TB, addr, method, target, body string, lines ...string) Resp {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, addr)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n" + body)
	return rawDo(t, addr, b.String())
}

// rawGet is rawDo for "METHOD target" with Host, Connection: close and extra
// header lines (each "Name: value", sent exactly as given).
func rawGet(t testing.TB, addr, method, target string, lines ...string) Resp {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, addr)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return rawDo(t, addr, b.String())
}

func hostOf(u string) string { return strings.TrimPrefix(u, "http://") }

// jws builds a compact JWS from header and claims with the given signer;
// sign == nil leaves the signature empty.
func jws(header, claims map[string]any, sign func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	if sign == nil {
		return input + "."
	}
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

// jwsRaw is jws with a header and claims given as JSON text (for duplicate
// keys and other shapes a map cannot hold).
func jwsRaw(header, claims string, sign func(input []byte) []byte) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	if sign == nil {
		return input + "."
	}
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

func edSigner(k ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k, in) }
}

func hsSigner(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
}

func constSigner(sig string) func([]byte) []byte { return func([]byte) []byte { return []byte(sig) } }

// keyFile writes a fresh Ed25519 key as PKCS#8 PEM (authsvc's
// JWT_PRIVATE_KEY_FILE), so the suite can sign tokens with the stack's real
// signing key and test claim checks in isolation from the signature.
func keyFile(t testing.TB) (ed25519.PrivateKey, string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv, path
}

// JWK is one published key.
type JWK struct{ Kty, Crv, X, Kid, Alg, Use string }

// JWKS fetches the published keys through the proxy.
func (s *Stack) JWKS(t testing.TB) []JWK {
	t.Helper()
	r := s.NewUser(t).Do("GET", "/api/auth/jwks", "")
	var set struct{ Keys []JWK }
	r.JSON(t, &set)
	if r.Status != http.StatusOK || len(set.Keys) == 0 {
		t.Fatalf("jwks: %s", r)
	}
	return set.Keys
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	b, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func headerOf(t testing.TB, jwt string) map[string]any {
	t.Helper()
	b, err := b64.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// userID is the signed-in user's id from get-session.
func (u *User) userID() string {
	u.t.Helper()
	var sess struct{ User struct{ ID string } }
	u.Do("GET", "/api/auth/get-session", "").JSON(u.t, &sess)
	if sess.User.ID == "" {
		u.t.Fatalf("no session for %s", u.Email)
	}
	return sess.User.ID
}

// get sends GET path with the token as a bearer and nothing else.
func bearerGet(t testing.TB, baseURL, path, tok string, headers ...string) Resp {
	t.Helper()
	req, err := http.NewRequest("GET", baseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header[headers[i]] = append(req.Header[headers[i]], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Resp{resp.StatusCode, resp.Header, b}
}

// marker returns a unique query marker for one attack, so the recorder can
// tell whether that request reached the backend whatever its path became.
func marker(name string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	clean := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, strings.ToLower(name))
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return "atk-" + clean + "-" + b64.EncodeToString(r[:])
}
