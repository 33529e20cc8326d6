// Package headers implements the proxy's header hygiene: inbound identity and
// forwarding headers are removed in every spelling before the proxy sets its
// own, and the access token never reaches the backend.
package headers

import (
	"net/http"
	"strings"

	"gatehouse.dev/kit/wire"
)

// Headers the proxy sets on every forwarded request (canonical forms).
const (
	UserID          = wire.HeaderUserID
	ForwardedFor    = "X-Forwarded-For"
	ForwardedProto  = "X-Forwarded-Proto"
	ForwardedHost   = "X-Forwarded-Host"
	RequestID       = "X-Request-Id"
	Authorization   = "Authorization"
	Cookie          = "Cookie"
	headerUserIDLow = "x-user-id"
)

// strippedExact are removed when a header's name, lower-cased with '_' read
// as '-', equals one of them. Besides SPEC's list this covers the other names
// that frameworks take as the client's address or the original URL.
var strippedExact = map[string]bool{
	headerUserIDLow: true, "forwarded": true, "x-real-ip": true, "x-remote-user": true,
	"remote-user": true, "x-request-id": true, "x-original-url": true, "x-original-uri": true,
	"x-rewrite-url": true, "x-client-ip": true, "client-ip": true, "true-client-ip": true,
	"x-cluster-client-ip": true, "cf-connecting-ip": true, "fastly-client-ip": true,
	"x-remote-addr": true, "x-originating-ip": true, "x-host": true,
}

// strippedPrefixes are removed when the normalised name starts with them.
var strippedPrefixes = []string{"x-user-", "x-auth-", "x-forwarded-", "x-remote-"}

// Spoofable reports whether name is an identity or forwarding header that
// only the proxy may set. Letter case does not matter and '_' counts as '-',
// since some servers (and CGI) treat X_User_Id as X-User-Id.
//
// It runs for every header of every request, so it normalises into a stack
// buffer rather than a new string (strings.ToLower allocates for any name
// with a capital letter, which is every canonical header key).
func Spoofable(name string) bool {
	var buf [64]byte
	n, ok := normaliseInto(&buf, name)
	if !ok { // long or non-ASCII: the allocating path, same rules
		return spoofableNormalised(normalise(name))
	}
	// A map index with string(bytes) does not allocate.
	if strippedExact[string(buf[:n])] {
		return true
	}
	for _, p := range strippedPrefixes {
		if n >= len(p) && string(buf[:len(p)]) == p {
			return true
		}
	}
	return false
}

func spoofableNormalised(n string) bool {
	if strippedExact[n] {
		return true
	}
	for _, p := range strippedPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// normaliseInto writes name as normalise would (spaces trimmed, ASCII lower
// case, '_' as '-') into buf; ok is false when it does not fit.
func normaliseInto(buf *[64]byte, name string) (n int, ok bool) {
	name = strings.TrimSpace(name)
	if len(name) > len(buf) {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		case c >= 0x80:
			return 0, false // leave non-ASCII to strings.ToLower's rules
		}
		buf[i] = c
	}
	return len(name), true
}

func normalise(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if strings.IndexByte(n, '_') >= 0 {
		n = strings.ReplaceAll(n, "_", "-")
	}
	return n
}

// Normalise returns name as Spoofable compares it: spaces trimmed, lower
// case, '_' read as '-'.
func Normalise(name string) string { return normalise(name) }

// StripNamed deletes every header of h whose Normalise'd name is in names
// (the routes file's identity headers), in any spelling and every
// occurrence. A nil or empty set deletes nothing.
func StripNamed(h http.Header, names map[string]bool) {
	if len(names) == 0 {
		return
	}
	for k := range h {
		if names[normalise(k)] {
			delete(h, k)
		}
	}
}

// StripInbound deletes every Spoofable header from h, whatever the case of
// its key and however many values it has.
func StripInbound(h http.Header) {
	for k := range h {
		if Spoofable(k) {
			delete(h, k)
		}
	}
}

// RemoveCookies drops the cookies named in names from every Cookie header of
// h and joins what remains into a single Cookie header (RFC 6265 §5.4: one
// line), keeping the other cookies byte for byte. No Cookie header remains
// when nothing is left.
func RemoveCookies(h http.Header, names []string) {
	var kept []string
	found := false
	for k, vs := range h {
		if !strings.EqualFold(k, Cookie) {
			continue
		}
		found = true
		delete(h, k)
		for _, line := range vs {
			for part := range strings.SplitSeq(line, ";") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				name, _, _ := strings.Cut(part, "=")
				if contains(names, strings.TrimSpace(name)) {
					continue
				}
				kept = append(kept, part)
			}
		}
	}
	if found && len(kept) > 0 {
		h[Cookie] = []string{strings.Join(kept, "; ")}
	}
}

// DeleteAnyCase deletes every key of h equal to name in any letter case.
func DeleteAnyCase(h http.Header, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
