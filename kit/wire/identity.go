package wire

// HeaderUserID carries the verified user id from the proxy to the backend,
// in canonical form (http.Header keys are canonicalised).
const HeaderUserID = "X-User-Id"

// ValidUserID reports whether s may be a user id: 1–128 printable ASCII
// characters, no spaces or commas (a comma would let a header list smuggle a
// second identity). The proxy refuses a token whose sub breaks it, and the
// backend refuses such an X-User-ID.
func ValidUserID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == ',' {
			return false
		}
	}
	return true
}

// DefaultCookiePrefix is Better Auth's cookie name prefix, so its client
// helpers find the cookies.
const DefaultCookiePrefix = "better-auth"

// ValidCookiePrefix reports whether s can start a cookie name: 1–64 letters,
// digits, '.', '_' or '-'.
func ValidCookiePrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// SessionCookie names authsvc's session cookie; secure (an https public
// origin) adds the __Secure- prefix browsers enforce.
func SessionCookie(prefix string, secure bool) string {
	return cookieName(prefix, "session_token", secure)
}

// AccessCookie names the HttpOnly cookie holding the JWT, which authsvc sets
// and the proxy reads.
func AccessCookie(prefix string, secure bool) string {
	return cookieName(prefix, "access_token", secure)
}

func cookieName(prefix, name string, secure bool) string {
	if secure {
		return "__Secure-" + prefix + "." + name
	}
	return prefix + "." + name
}

// secretPathPrefixes are routes whose path carries a credential: Better
// Auth's reset link is GET /api/auth/reset-password/<token>, live for an
// hour. Every access log (proxy and authsvc alike) redacts what follows.
var secretPathPrefixes = []string{"/api/auth/reset-password/"}

// LoggablePath returns p with any credential it carries replaced by
// "[redacted]", for logs.
func LoggablePath(p string) string {
	for _, prefix := range secretPathPrefixes {
		if len(p) > len(prefix) && p[:len(prefix)] == prefix {
			return prefix + "[redacted]"
		}
	}
	return p
}
