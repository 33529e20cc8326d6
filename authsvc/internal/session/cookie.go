package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
)

// Signer signs session tokens for the cookie exactly as Better Auth (better-call's
// setSignedCookie) does: token + "." + base64(HMAC-SHA256(secret, token)),
// then encodeURIComponent. The zero value is not usable.
type Signer struct{ secret []byte }

// NewSigner returns a Signer keyed by secret (AUTH_SECRET).
func NewSigner(secret string) *Signer { return &Signer{secret: []byte(secret)} }

// Sign returns the cookie value for token, already URL-encoded.
func (s *Signer) Sign(token string) string {
	return EncodeURIComponent(token + "." + s.mac(token))
}

// Verify returns the token inside a cookie value and whether its signature
// is valid. It accepts the value URL-encoded or not (browsers send it back
// as set).
func (s *Signer) Verify(value string) (string, bool) {
	if dec, err := url.PathUnescape(value); err == nil {
		value = dec
	}
	i := strings.LastIndexByte(value, '.')
	if i < 1 {
		return "", false
	}
	token, sig := value[:i], value[i+1:]
	// better-call's rule: a base64 SHA-256 MAC is 44 characters ending in "=".
	if len(sig) != 44 || !strings.HasSuffix(sig, "=") {
		return "", false
	}
	if !hmac.Equal([]byte(sig), []byte(s.mac(token))) {
		return "", false
	}
	return token, true
}

func (s *Signer) mac(token string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(token))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// EncodeURIComponent escapes s like JavaScript's encodeURIComponent: every
// byte except A–Z a–z 0–9 - _ . ! ~ * ' ( ) becomes %XX.
func EncodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			strings.IndexByte("-_.!~*'()", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
