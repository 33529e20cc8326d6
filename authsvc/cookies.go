package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/kit/wire"
)

// cookieJar writes and reads authsvc's two cookies, byte-for-byte in
// Better Auth's format (better-call's serializeCookie):
//
//	<prefix>.session_token=<token>.<base64 HMAC>; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax
//	<prefix>.access_token=<jwt>; Max-Age=900; Path=/api; HttpOnly; SameSite=Lax
//
// both with the __Secure- name prefix and Secure when AUTH_BASE_URL is https.
type cookieJar struct {
	sessionName, accessName string
	secure                  bool
	signer                  *session.Signer
	sessionTTL, jwtTTL      time.Duration
}

func newCookieJar(cfg config) *cookieJar {
	return &cookieJar{
		sessionName: wire.SessionCookie(cfg.CookiePrefix, cfg.Secure),
		accessName:  wire.AccessCookie(cfg.CookiePrefix, cfg.Secure),
		secure:      cfg.Secure,
		signer:      session.NewSigner(cfg.AuthSecret),
		sessionTTL:  cfg.SessionTTL,
		jwtTTL:      cfg.JWTTTL,
	}
}

// maxAge < 0 means no Max-Age (a browser-session cookie).
func (c *cookieJar) write(w http.ResponseWriter, name, value string, maxAge int, path string) {
	var b strings.Builder
	b.WriteString(name + "=" + value)
	if maxAge >= 0 {
		fmt.Fprintf(&b, "; Max-Age=%d", maxAge)
	}
	b.WriteString("; Path=" + path + "; HttpOnly")
	if c.secure {
		b.WriteString("; Secure")
	}
	b.WriteString("; SameSite=Lax")
	w.Header().Add("Set-Cookie", b.String())
}

// setSession sets the signed session cookie; a session that is not
// remembered gets no Max-Age, so it ends with the browser session
// (Better Auth's rememberMe=false).
func (c *cookieJar) setSession(w http.ResponseWriter, token string, remember bool) {
	maxAge := -1
	if remember {
		maxAge = int(c.sessionTTL / time.Second)
	}
	c.write(w, c.sessionName, c.signer.Sign(token), maxAge, "/")
}

// setAccess sets the access-token cookie the proxy reads (SPEC.md, proxy).
func (c *cookieJar) setAccess(w http.ResponseWriter, jwt string) {
	c.write(w, c.accessName, jwt, int(c.jwtTTL/time.Second), "/api")
}

// expire removes both cookies (Max-Age=0, same path and attributes).
func (c *cookieJar) expire(w http.ResponseWriter) {
	c.write(w, c.sessionName, "", 0, "/")
	c.write(w, c.accessName, "", 0, "/api")
}

// sessionToken returns the token from a validly signed session cookie.
func (c *cookieJar) sessionToken(r *http.Request) (string, bool) {
	ck, err := r.Cookie(c.sessionName)
	if err != nil || ck.Value == "" {
		return "", false
	}
	return c.signer.Verify(ck.Value)
}
