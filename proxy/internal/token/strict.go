package token

// strict.go: the strict claims scanner. Once a signature verified, the
// payload's registered claims must be written as RFC 7519 says (exact-case
// names, at most once, numeric dates), because encoding/json would read
// "EXP", a repeated "exp" or a quoted date as if they were well formed. A
// hand-written scan decides the common payloads; encoding/json's tokenizer
// decides the rest, and a fuzz test holds the two to the same answers.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// registered are the claim names Gatehouse reads. encoding/json matches
// object keys case-insensitively and lets the last duplicate win, and
// golang-jwt's NumericDate also accepts a quoted number, so a signed payload
// could say "EXP", "exp" twice or "exp":"9999999999" and be read as if it
// were well formed. RFC 7519 names are case-sensitive and dates are
// numbers: anything else is refused rather than interpreted.
var registered = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true, "sid": true}

// registeredFold returns the registered claim name key folds to under
// Unicode case folding, as encoding/json matches it, or "".
func registeredFold(key string) string {
	for name := range registered {
		if strings.EqualFold(key, name) {
			return name
		}
	}
	return ""
}

// strictClaims checks the raw payload of a token whose signature verified:
// registered claim names in their exact case and at most once, and
// exp/nbf/iat as JSON numbers. It runs once per token (cache misses only).
//
// It returns the decoded payload, which Claims keeps for Claim.
func strictClaims(raw string) ([]byte, error) {
	first := strings.IndexByte(raw, '.')
	last := strings.LastIndexByte(raw, '.')
	payload, err := base64.RawURLEncoding.DecodeString(raw[first+1 : last])
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	if decided, err := strictClaimsFast(payload); decided {
		return payload, err
	}
	return payload, strictClaimsJSON(payload)
}

// strictClaimsJSON is strictClaims on the decoded payload with
// encoding/json's tokenizer: every JSON the fast path declines.
func strictClaimsJSON(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("payload is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("payload is not a JSON object")
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return errors.New("payload is not a JSON object")
		}
		// encoding/json matches keys with Unicode case folding (ſ is s, K
		// is k), so compare the same way: strings.ToLower would miss "ſub".
		lower := registeredFold(key)
		if lower == "" {
			continue
		}
		if key != lower {
			return fmt.Errorf("claim %q: registered claim names are lower case", key)
		}
		if seen[key] {
			return fmt.Errorf("claim %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "exp", "nbf", "iat":
			if len(val) == 0 || !(val[0] == '-' || (val[0] >= '0' && val[0] <= '9')) {
				return fmt.Errorf("claim %q must be a number", key)
			}
		}
	}
	return nil
}

// strictClaimsFast is strictClaimsJSON for the payloads real issuers send:
// valid JSON, ASCII only, no backslash escapes. It walks the top-level keys
// by hand instead of through json.Decoder.Token (a third of a fresh token's
// verification cost). decided is false, and err nil, for anything
// else: invalid JSON, any byte >= 0x80 or '\\' (escaped or non-ASCII keys
// need encoding/json's own decoding and folding rules), so the two paths
// can never disagree.
func strictClaimsFast(p []byte) (decided bool, err error) {
	if !json.Valid(p) {
		return false, nil
	}
	for _, c := range p {
		if c >= 0x80 || c == '\\' {
			return false, nil
		}
	}
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return true, errors.New("payload is not a JSON object")
	}
	i++
	var seen [8]bool // by index in registeredNames
	for {
		i = skipSpace(p, i)
		if p[i] == '}' {
			return true, nil
		}
		if p[i] == ',' {
			i = skipSpace(p, i+1)
		}
		// p[i] is '"': a key. Valid JSON without backslashes: the key
		// ends at the next quote.
		end := i + 1
		for p[end] != '"' {
			end++
		}
		key := p[i+1 : end]
		i = skipSpace(p, end+1) + 1 // past ':'
		i = skipSpace(p, i)
		valStart := i
		i = skipValue(p, i)
		n := registeredIndex(key)
		if n < 0 {
			continue
		}
		if string(key) != registeredNames[n] {
			return true, fmt.Errorf("claim %q: registered claim names are lower case", key)
		}
		if seen[n] {
			return true, fmt.Errorf("claim %q appears twice", key)
		}
		seen[n] = true
		switch registeredNames[n] {
		case "exp", "nbf", "iat":
			if v := p[valStart]; !(v == '-' || (v >= '0' && v <= '9')) {
				return true, fmt.Errorf("claim %q must be a number", key)
			}
		}
	}
}

var registeredNames = [8]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"}

// registeredIndex returns the index of key in registeredNames ignoring
// ASCII case (the fast path has only ASCII), or -1.
func registeredIndex(key []byte) int {
	if len(key) != 3 {
		return -1
	}
	var l [3]byte
	for i, c := range key {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	for n, name := range registeredNames {
		if string(l[:]) == name {
			return n
		}
	}
	return -1
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value at p[i], for valid
// JSON without backslashes.
func skipValue(p []byte, i int) int {
	depth := 0
	for ; i < len(p); i++ {
		switch p[i] {
		case '"':
			i++
			for p[i] != '"' {
				i++
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
