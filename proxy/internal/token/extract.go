package token

import (
	"errors"
	"net/http"
	"strings"

	"gatehouse.dev/kit/wire"
)

// MaxTokenBytes is the largest token accepted (SPEC: tokens over 8 KiB are
// rejected). It is checked before any parsing.
const MaxTokenBytes = 8 << 10

// Source says where a token came from.
type Source int

// Token sources. SourceCookie matters for the CSRF rule: only a request
// authenticated by an ambient cookie can be forged cross-site.
const (
	SourceNone Source = iota
	SourceHeader
	SourceCookie
)

// CookieNames returns the names of the access cookie for prefix, in the order
// authsvc may set them: plain and, on https, __Secure- prefixed.
func CookieNames(prefix string) []string {
	return []string{wire.AccessCookie(prefix, false), wire.AccessCookie(prefix, true)}
}

// Extract finds the access token: "Authorization: Bearer <jwt>", else one of
// the cookies named in cookieNames. It never picks one of two candidates
// silently: two Authorization headers, two different access cookies, or a
// bearer token that differs from the cookie are ReasonAmbiguous. No token at
// all is ReasonMissing. Header keys are matched in any letter case.
func Extract(h http.Header, cookieNames []string) (string, Source, error) {
	// Count every Authorization value in any key spelling, keeping the
	// first: no slice is built, since more than one is refused anyway.
	var first string
	nAuthz := 0
	for k, vs := range h {
		if strings.EqualFold(k, "Authorization") {
			if nAuthz == 0 && len(vs) > 0 {
				first = vs[0]
			}
			nAuthz += len(vs)
		}
	}
	cookie, err := accessCookie(h, cookieNames)
	if err != nil {
		return "", SourceNone, err
	}
	switch nAuthz {
	case 0:
		if cookie == "" {
			return "", SourceNone, fail(ReasonMissing, nil)
		}
		if len(cookie) > MaxTokenBytes {
			return "", SourceNone, fail(ReasonTooLarge, nil)
		}
		return cookie, SourceCookie, nil
	case 1:
	default:
		return "", SourceNone, fail(ReasonAmbiguous, errors.New("more than one Authorization header"))
	}
	v := first
	if len(v) > MaxTokenBytes+len("Bearer ")+16 {
		return "", SourceNone, fail(ReasonTooLarge, nil)
	}
	scheme, raw, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", SourceNone, fail(ReasonMalformed, errors.New("authorization scheme is not Bearer"))
	}
	raw = strings.TrimLeft(raw, " ")
	if raw == "" {
		return "", SourceNone, fail(ReasonMalformed, errors.New("empty bearer token"))
	}
	if len(raw) > MaxTokenBytes {
		return "", SourceNone, fail(ReasonTooLarge, nil)
	}
	if cookie != "" && cookie != raw {
		return "", SourceNone, fail(ReasonAmbiguous, errors.New("bearer token differs from access cookie"))
	}
	return raw, SourceHeader, nil
}

// accessCookie returns the value of the access cookie, "" when absent. Cookie
// headers are scanned by hand (not http.Request.Cookies) so that every
// occurrence counts and a malformed neighbour cannot hide a duplicate.
func accessCookie(h http.Header, names []string) (string, error) {
	var found string
	for k, vs := range h {
		if !strings.EqualFold(k, "Cookie") {
			continue
		}
		for _, line := range vs {
			for part := range strings.SplitSeq(line, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
				if !isOneOf(name, names) {
					continue
				}
				val = strings.Trim(strings.TrimSpace(val), `"`)
				if val == "" {
					continue
				}
				if found != "" && found != val {
					return "", fail(ReasonAmbiguous, errors.New("two different access cookies"))
				}
				found = val
			}
		}
	}
	return found, nil
}

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}
