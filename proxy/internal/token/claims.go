package token

// claims.go: the claims a verified token carries, and Claim, which reads
// any other top-level claim by exact name for the identity headers.

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the verified claims the proxy uses.
type Claims struct {
	jwt.RegisteredClaims
	// SID is the session the token was issued for (authsvc sets it); "" when
	// absent, e.g. in HS256 tokens from other issuers.
	SID string `json:"sid,omitempty"`

	// payload is the decoded JSON payload the claims came from, for Claim;
	// nil for claims not made by Verify.
	payload []byte
	// others are payload's top-level members, decoded on the first Claim
	// call (only proxies with an identity mapping ask) and shared after.
	others *lazyClaims
}

// lazyClaims are a payload's top-level members by exact name, decoded once.
type lazyClaims struct {
	once sync.Once
	m    map[string]json.RawMessage
}

// Claim returns the raw JSON value of the top-level claim name, matched
// exactly (RFC 7519 names are case-sensitive), and whether the token has
// it. A claim that appears more than once is reported absent rather than
// picking one. Claims not made by Verify have no claims to offer.
//
// The payload is decoded on the first call for a token and shared by every
// later request that reuses it (the verified-signature cache hands out the
// same *Claims), so only proxies that map claims to headers pay for it.
func (c *Claims) Claim(name string) (json.RawMessage, bool) {
	if c == nil || c.others == nil {
		return nil, false
	}
	c.others.once.Do(func() { c.others.m = topLevel(c.payload) })
	v, ok := c.others.m[name]
	return v, ok && v != nil
}

// topLevel splits a JSON object into its members. Duplicate names map to
// nil (ambiguous); a payload that is not an object yields an empty map.
func topLevel(payload []byte) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return m
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return map[string]json.RawMessage{}
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return map[string]json.RawMessage{}
		}
		if _, dup := m[key]; dup {
			m[key] = nil
			continue
		}
		m[key] = val
	}
	return m
}
