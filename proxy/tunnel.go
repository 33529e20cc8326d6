package main

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
)

// boundTunnel ends a protocol upgrade (a WebSocket) when the token that
// opened it stops being valid: at its exp plus JWT_LEEWAY, or as soon as
// its session is revoked. ReverseProxy closes both sides of the tunnel when
// the request's context ends (golang/go#35559), so the bound is a context.
// Requests without an upgrade, or without a verified token (auth: none, or
// optional without one), pass through untouched.
func (s *server) boundTunnel(next step) step {
	return func(x *exchange, r *http.Request) {
		if len(r.Header["Upgrade"]) == 0 || !headerHasToken(r.Header, "Connection", "upgrade") {
			next(x, r)
			return
		}
		if x.claims == nil || x.claims.ExpiresAt == nil {
			next(x, r)
			return
		}
		ctx, cancel := context.WithDeadline(r.Context(), x.claims.ExpiresAt.Add(s.cfg.Leeway))
		defer cancel()
		revoked, stop := s.revoked.Watch(x.claims.SID)
		defer stop()
		go func() {
			select {
			case <-revoked:
				httpx.LogFrom(ctx).Info("session revoked: closing its tunnel")
				cancel()
			case <-ctx.Done():
				if ctx.Err() == context.DeadlineExceeded {
					httpx.LogFrom(ctx).Info("token expired: closing its tunnel", zap.Time("exp", x.claims.ExpiresAt.Time))
				}
			}
		}()
		next(x, r.WithContext(ctx))
	}
}

// headerHasToken reports whether any value of h[name] lists token
// (comma-separated, any case).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
