// Package pathclass decides which upstream a request path belongs to. It
// refuses, rather than guesses at, any path that another component could
// read differently: dot segments, empty segments, backslashes, NUL and other
// control bytes, semicolons (path parameters: Tomcat, Jetty and Spring read
// "/api/auth/..;/v1" as "/api/v1"), and percent-encoded slashes, backslashes,
// dots, semicolons, NUL or percent signs. A path that passes is already canonical, so the string the
// route is decided on is the very string forwarded (SPEC: "Routing is decided
// on the cleaned path and the same path is forwarded").
package pathclass

import (
	"errors"
	"net/url"
	"strings"
)

// Class is a route class; it is also the "route" label of request metrics.
type Class string

// Route classes.
const (
	Healthz    Class = "healthz"     // answered by the proxy
	Readyz     Class = "readyz"      // answered by the proxy
	AuthStrict Class = "auth_strict" // routes that check a password or send mail: AUTH_RATE_LIMIT
	Auth       Class = "auth"        // the rest of /api/auth/*: authsvc, no token
	API        Class = "api"         // /api/*: a valid token, then the backend
	Web        Class = "web"         // everything else when WEB_URL is set
	NotFound   Class = "not_found"   // everything else otherwise
	BadPath    Class = "bad_path"    // refused by Check
)

// ErrNonCanonical is returned by Check for a path that is refused.
var ErrNonCanonical = errors.New("pathclass: non-canonical or ambiguous path")

// encodedForbidden are escapes that would change the path's segments or be
// decoded a second time downstream: / \ . ; NUL %.
var encodedForbidden = []string{"%2f", "%5c", "%2e", "%3b", "%00", "%25"}

// Check reports whether u's path is canonical and unambiguous: it starts with
// "/", has no empty, "." or ".." segments (a trailing slash is allowed), no
// backslash, semicolon or control byte once decoded, and none of the escapes
// %2f %5c %2e %3b %00 %25, nor an escaped unreserved character (%61 for
// "a"), in any letter case in its raw form.
func Check(u *url.URL) error {
	if u == nil {
		return ErrNonCanonical
	}
	if u.Opaque != "" {
		return ErrNonCanonical
	}
	if err := checkRaw(u.EscapedPath()); err != nil {
		return err
	}
	if u.RawPath != "" {
		if err := checkRaw(u.RawPath); err != nil {
			return err
		}
	}
	return checkDecoded(u.Path)
}

func checkRaw(raw string) error {
	if strings.IndexByte(raw, '%') < 0 {
		return nil
	}
	low := strings.ToLower(raw)
	for _, e := range encodedForbidden {
		if strings.Contains(low, e) {
			return ErrNonCanonical
		}
	}
	// An escaped unreserved character (RFC 3986 2.3: letters, digits,
	// - . _ ~) means the same as the character itself to every backend
	// that decodes, but a routes file matches the raw path: "/%61pi/" must
	// not slip past the "/api/" prefix.
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && unreserved(unhex(raw[i+1])<<4|unhex(raw[i+2])) {
			return ErrNonCanonical
		}
	}
	return nil
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff // not hex: unhex(x)<<4|unhex(y) is then never unreserved
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func checkDecoded(p string) error {
	if len(p) == 0 || p[0] != '/' {
		return ErrNonCanonical
	}
	for i := 0; i < len(p); i++ {
		// A ';' starts a path parameter for servlet containers, which then
		// drop it: "..;" is ".." to them and "/api/auth;x/..;/v1" routes
		// one way here and another way there (issue 12).
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ';' {
			return ErrNonCanonical
		}
	}
	rest := p[1:]
	for rest != "" {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return ErrNonCanonical
		case seg == "" && more: // "//"
			return ErrNonCanonical
		}
		rest = tail
	}
	return nil
}

// Classify returns the class of a path that passed Check. web says whether
// WEB_URL is set.
func Classify(p string, web bool) Class {
	switch {
	case p == "/healthz":
		return Healthz
	case p == "/readyz":
		return Readyz
	case under(p, "/api/auth/sign-in"), under(p, "/api/auth/sign-up"),
		// Also a password check (a stolen session must not allow fast
		// guessing of the password it lacks) or a mail sent.
		p == "/api/auth/change-password", p == "/api/auth/delete-user",
		p == "/api/auth/request-password-reset", p == "/api/auth/send-verification-email":
		return AuthStrict
	case under(p, "/api/auth"):
		return Auth
	case under(p, "/api"):
		return API
	case web:
		return Web
	}
	return NotFound
}

// under reports whether p is prefix itself or below it ("/api" and "/api/x",
// not "/apix").
func under(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// Of checks u and classifies its path in one step; BadPath when Check fails.
func Of(u *url.URL, web bool) Class {
	if Check(u) != nil {
		return BadPath
	}
	return Classify(u.Path, web)
}
