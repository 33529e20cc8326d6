package token

// shape.go: the cheap check every token passes before anything decodes it,
// so a request carrying thousands of dots or stray bytes costs one pass
// over a table.

import "strings"

// compactJWS reports whether s has the shape header.payload.signature with
// base64url characters only, so a string of thousands of dots or stray
// characters is refused before any decoding.
func compactJWS(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch jwsByte[s[i]] {
		case jwsDot:
			dots++
			if dots > 2 {
				return false
			}
		case jwsBad:
			return false
		}
	}
	if dots != 2 {
		return false
	}
	h, rest, _ := strings.Cut(s, ".")
	p, sig, _ := strings.Cut(rest, ".")
	return h != "" && p != "" && sig != ""
}

// jwsByte classifies each byte for compactJWS with one table load per byte
// (it runs on every request, over the whole token).
var jwsByte = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '.':
			t[c] = jwsDot
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			t[c] = jwsOK
		default:
			t[c] = jwsBad
		}
	}
	return t
}()

const (
	jwsBad uint8 = iota
	jwsOK
	jwsDot
)
