// Package wire holds the rules that two Gatehouse services must read the
// same way. Each rule is written once, here, and imported by both sides.
package wire

import (
	"net/url"
	"strings"
)

// ParseOrigin returns the origin s names, as Origin returns it, and whether s
// is an origin at all: an absolute http or https URL with a host and nothing
// after it but an optional "/" (no path, query, fragment or userinfo). It is
// the rule for configured origins (the proxy's ALLOWED_ORIGINS, authsvc's
// TRUSTED_ORIGINS) and for an Origin request header.
func ParseOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery ||
		u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	return originOfURL(u)
}

// OriginOf returns the origin of an absolute http or https URL with any path
// (a Referer, a callback URL, AUTH_BASE_URL), and whether it has one.
func OriginOf(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Opaque != "" {
		return "", false
	}
	return originOfURL(u)
}

func originOfURL(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" {
		return "", false
	}
	return Origin(scheme, u.Host), true
}

// Origin builds the comparable form of an origin from a scheme and a host
// (with an optional port, as in a Host header): both lower-cased, and the
// scheme's default port (":80" for http, ":443" for https) removed, so
// "https://App.example.com:443" and "https://app.example.com" are equal
// (issue 12: the proxy stripped default ports and authsvc did not).
func Origin(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	if (scheme == "http" && strings.HasSuffix(host, ":80")) || (scheme == "https" && strings.HasSuffix(host, ":443")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return scheme + "://" + host
}
