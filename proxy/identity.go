package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gatehouse.dev/proxy/internal/headers"
	"gatehouse.dev/proxy/internal/token"
)

// maxIdentityValue bounds one identity header's value (over 1 KiB is 401).
const maxIdentityValue = 1024

// identityValues maps a verified token's claims to header values, in ident's
// order; "" means the claim is absent (or null, or an empty array) and the
// header is not sent. Strings are sent as they are, numbers as written in
// the token, booleans as true/false, arrays of strings joined with ",".
// Anything else refuses the token (ReasonBadClaim): an object, an array
// holding anything but strings, a string with a control character or a
// comma inside an array (the join would be ambiguous), or a value over
// maxIdentityValue bytes. The token was signed by a trusted issuer, but its
// claims may hold user-chosen text (a display name, an email), and a header
// built from them must not be able to end early or smuggle another.
func identityValues(c *token.Claims, ident []identityHeader) ([]string, error) {
	vals := make([]string, len(ident))
	for i, ih := range ident {
		raw, ok := c.Claim(ih.claim)
		if !ok {
			continue
		}
		v, err := headerValue(raw)
		if err != nil {
			return nil, token.Refuse(token.ReasonBadClaim, fmt.Errorf("claim %q: %w", ih.claim, err))
		}
		vals[i] = v
	}
	return vals, nil
}

var (
	errClaimObject  = errors.New("an object cannot be a header value")
	errClaimArray   = errors.New("an array must hold only strings without commas")
	errClaimControl = errors.New("control characters cannot be in a header value")
	errClaimLong    = errors.New("over 1 KiB")
)

// headerValue renders one claim's JSON value as a header value.
func headerValue(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 4*maxIdentityValue { // escapes may shrink; anything larger cannot fit
		return "", errClaimLong
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	var out string
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		out = v
	case json.Number:
		out = v.String()
	case bool:
		out = "false"
		if v {
			out = "true"
		}
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || strings.IndexByte(s, ',') >= 0 {
				return "", errClaimArray
			}
			parts = append(parts, s)
		}
		out = strings.Join(parts, ",")
	default:
		return "", errClaimObject
	}
	if len(out) > maxIdentityValue {
		return "", errClaimLong
	}
	for _, r := range out {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return "", errClaimControl // also C1 controls, and bytes that are not UTF-8
		}
	}
	return out, nil
}

// setIdentity sets the identity headers of x on h (an outbound request or
// the forward-auth answer): X-User-ID, then every mapped claim present.
func setIdentity(x *exchange, set func(k, v string)) {
	if x.user == "" {
		return
	}
	set(headers.UserID, x.user)
	if x.table == nil {
		return
	}
	for i, ih := range x.table.identity {
		if i < len(x.identity) && x.identity[i] != "" {
			set(ih.header, x.identity[i])
		}
	}
}
