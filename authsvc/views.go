package main

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/authsvc/internal/user"
)

// userJSON is Better Auth's user object.
type userJSON struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"emailVerified"`
	Image         *string  `json:"image"`
	CreatedAt     jsonTime `json:"createdAt"`
	UpdatedAt     jsonTime `json:"updatedAt"`
}

func userView(u *user.User) userJSON {
	return userJSON{
		ID: u.ID, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified, Image: u.Image,
		CreatedAt: jsonTime(u.CreatedAt), UpdatedAt: jsonTime(u.UpdatedAt),
	}
}

// sessionJSON is Better Auth's session object. Token is the caller's own
// session token (Better Auth returns it too); its hash is never sent.
type sessionJSON struct {
	ID        string   `json:"id"`
	Token     string   `json:"token"`
	UserID    string   `json:"userId"`
	ExpiresAt jsonTime `json:"expiresAt"`
	CreatedAt jsonTime `json:"createdAt"`
	UpdatedAt jsonTime `json:"updatedAt"`
	IPAddress string   `json:"ipAddress"`
	UserAgent string   `json:"userAgent"`
}

func sessionView(s *session.Session, token string) sessionJSON {
	return sessionJSON{
		ID: s.ID, Token: token, UserID: s.UserID, ExpiresAt: jsonTime(s.ExpiresAt),
		CreatedAt: jsonTime(s.CreatedAt), UpdatedAt: jsonTime(s.UpdatedAt),
		IPAddress: s.IPAddress, UserAgent: s.UserAgent,
	}
}

// issueJWT signs an access token for a session: only identifiers, no
// personal data (SPEC.md: sub, iss, aud, iat, exp, jti, sid).
func (d *deps) issueJWT(u *user.User, s *session.Session) (string, error) {
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	tok, err := d.keys.Sign(jwt.MapClaims{
		"sub": u.ID,
		"iss": d.cfg.BaseURL,
		"aud": d.cfg.BaseURL,
		"iat": now.Unix(),
		"exp": now.Add(d.cfg.JWTTTL).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"sid": s.ID,
	})
	if err == nil {
		d.metrics.tokens.Inc()
	}
	return tok, err
}

// clientIP is the address recorded on a session, for the user's own
// "where am I signed in" view. Like Better Auth it prefers the first
// X-Forwarded-For entry (set by the proxy), else the TCP peer.
func clientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
			return a.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return ""
}
