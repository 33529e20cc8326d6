package main

import (
	"net/http"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/token"
)

var (
	errInvalidOrigin   = httpx.Errorf(http.StatusForbidden, "INVALID_ORIGIN", "Cookie-authenticated requests that change state must come from an allowed origin.")
	errKeysUnavailable = httpx.Errorf(http.StatusServiceUnavailable, "KEYS_UNAVAILABLE", "Token verification keys are not available yet; try again shortly.")
)

// checkToken returns the token check for mode (required or optional). A
// verified token puts its subject, claims and the identity headers mapped
// from its claims (ident, from the routes file; nil maps none) on the
// request's exchange, for Rewrite or the forward-auth verdict to send. Without a token, an optional
// route goes on with no identity and a required one is 401; a token that
// is present but bad is 401 on both. A token from the access cookie on an
// unsafe method must also come with an allowed Origin, since a browser
// attaches cookies to cross-site requests.
func (s *server) checkToken(mode authMode, ident []identityHeader) func(step) step {
	optional := mode == authOptional
	return func(next step) step {
		return func(x *exchange, r *http.Request) {
			raw, src, err := token.Extract(r.Header, s.cookieNames)
			if err != nil {
				if optional && token.ReasonOf(err) == token.ReasonMissing {
					next(x, r)
					return
				}
				s.rejectToken(x, r, err)
				return
			}
			// A WebSocket handshake is a GET, but it opens a read-write
			// channel with the user's cookies: browsers send SameSite=Lax
			// cookies on a sibling site's handshake, so it needs the same
			// origin rule as an unsafe method.
			if src == token.SourceCookie && (!safeMethod(r.Method) || isUpgrade(r)) && !s.originAllowed(r, x.info) {
				s.m.authFailures.WithLabelValues("invalid_origin").Inc()
				httpx.LogFrom(r.Context()).Info("cookie request from a foreign origin refused")
				httpx.WriteError(x, r, errInvalidOrigin)
				return
			}
			claims, err := s.verifier.Verify(r.Context(), raw)
			if err != nil {
				s.rejectToken(x, r, err)
				return
			}
			if len(ident) > 0 {
				vals, err := identityValues(claims, ident)
				if err != nil {
					s.rejectToken(x, r, err)
					return
				}
				x.identity = vals
			}
			httpx.AddLogFields(r.Context(), zap.String("user_id", claims.Subject))
			x.user = claims.Subject
			x.claims = claims
			next(x, r)
		}
	}
}

// rejectToken answers 401 (RFC 6750 §3: WWW-Authenticate, with
// error="invalid_token" when a token was presented), or 503 while no JWKS key
// has loaded yet. Neither the body nor the log line carries the token.
func (s *server) rejectToken(w http.ResponseWriter, r *http.Request, err error) {
	reason := token.ReasonOf(err)
	s.m.authFailures.WithLabelValues(string(reason)).Inc()
	httpx.LogFrom(r.Context()).Info("token refused", zap.String("reason", string(reason)))
	var he *httpx.Error
	challenge := `Bearer realm="gatehouse"`
	switch reason {
	case token.ReasonKeysUnavailable:
		he = errKeysUnavailable
		he = &httpx.Error{Status: he.Status, Code: he.Code, Message: he.Message, RetryAfter: 5}
		challenge = ""
	case token.ReasonMissing:
		he = httpx.Errorf(http.StatusUnauthorized, "UNAUTHENTICATED", "An access token is required.")
	case token.ReasonExpired:
		he = httpx.Errorf(http.StatusUnauthorized, "TOKEN_EXPIRED", "The access token has expired.")
		challenge += `, error="invalid_token", error_description="The access token expired"`
	case token.ReasonAmbiguous:
		he = httpx.Errorf(http.StatusUnauthorized, "AMBIGUOUS_TOKEN", "More than one access token was sent.")
		challenge += `, error="invalid_token"`
	default:
		he = httpx.Errorf(http.StatusUnauthorized, "INVALID_TOKEN", "The access token is invalid.")
		challenge += `, error="invalid_token"`
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	httpx.WriteError(w, r, he)
}

// isUpgrade reports whether r asks to switch protocols (a WebSocket).
func isUpgrade(r *http.Request) bool {
	return len(r.Header.Values("Upgrade")) > 0
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// originAllowed reports whether the request carries exactly one Origin equal
// to its own origin (scheme and Host as the client used them, in info) or to
// one of ALLOWED_ORIGINS. A missing or "null" Origin is not allowed.
func (s *server) originAllowed(r *http.Request, info reqInfo) bool {
	vals := r.Header.Values("Origin")
	if len(vals) != 1 {
		return false
	}
	o, ok := wire.ParseOrigin(vals[0])
	if !ok {
		return false
	}
	if info.host != "" && o == wire.Origin(info.scheme, info.host) {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if o == a {
			return true
		}
	}
	return false
}
