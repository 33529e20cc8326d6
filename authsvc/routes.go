package main

import (
	"context"

	"gatehouse.dev/kit/httpx"
)

// addRoutes is authsvc's whole API (docs/openapi.json): Better Auth's
// email-and-password endpoints, its session revocation endpoints, and its
// JWT plugin's /token and /jwks.
func addRoutes(mux httpx.Router, d *deps) {
	guard := newOriginGuard(d.cfg) // CSRF: Origin checks on cookie-bearing or login POSTs
	mux.Handle("POST /api/auth/sign-up/email", guard.login(handleSignUpEmail(d, guard)))
	mux.Handle("POST /api/auth/sign-in/email", guard.login(handleSignInEmail(d, guard)))
	mux.Handle("GET /api/auth/get-session", handleSessionGet(d))
	mux.Handle("GET /api/auth/token", handleTokenGet(d))
	mux.Handle("POST /api/auth/sign-out", guard.cookies(handleSignOut(d)))
	mux.Handle("POST /api/auth/revoke-sessions", guard.cookies(handleSessionsRevoke(d)))
	mux.Handle("POST /api/auth/revoke-other-sessions", guard.cookies(handleOtherSessionsRevoke(d)))
	mux.Handle("POST /api/auth/revoke-session", guard.cookies(handleSessionRevoke(d)))
	// Account lifecycle (SPEC.md; docs/account-lifecycle.md).
	mux.Handle("GET /api/auth/list-sessions", handleSessionsList(d))
	mux.Handle("POST /api/auth/update-user", guard.cookies(handleUserUpdate(d)))
	mux.Handle("POST /api/auth/change-password", guard.cookies(handlePasswordChange(d)))
	mux.Handle("POST /api/auth/request-password-reset", guard.cookies(handlePasswordResetRequest(d, guard)))
	mux.Handle("GET /api/auth/reset-password/{token}", handlePasswordResetLink(d, guard))
	mux.Handle("POST /api/auth/reset-password", guard.cookies(handlePasswordReset(d)))
	mux.Handle("POST /api/auth/send-verification-email", guard.cookies(handleVerificationSend(d, guard)))
	mux.Handle("GET /api/auth/verify-email", handleEmailVerify(d, guard))
	mux.Handle("POST /api/auth/delete-user", guard.cookies(handleUserDelete(d)))
	mux.Handle("GET /api/auth/jwks", handleJWKS(d.keys))
	mux.Handle("GET /api/auth/ok", handleOK())

	mux.Handle("GET /healthz", httpx.Healthz())
	mux.Handle("GET /readyz", httpx.Readyz(d.lc, func(ctx context.Context) error { return d.db.PingContext(ctx) }))
	mux.Handle("/", httpx.NotFoundHandler())

	// The same paths with any other method: a JSON 405 (a method-less
	// pattern is less specific than "POST /path", so it only gets the rest).
	for path, allow := range map[string]string{
		"/api/auth/sign-up/email": "POST", "/api/auth/sign-in/email": "POST",
		"/api/auth/sign-out": "POST", "/api/auth/get-session": "GET, HEAD",
		"/api/auth/revoke-sessions": "POST", "/api/auth/revoke-other-sessions": "POST", "/api/auth/revoke-session": "POST",
		"/api/auth/list-sessions": "GET, HEAD", "/api/auth/update-user": "POST", "/api/auth/change-password": "POST",
		"/api/auth/request-password-reset": "POST", "/api/auth/reset-password/{token}": "GET, HEAD",
		"/api/auth/reset-password": "POST", "/api/auth/send-verification-email": "POST",
		"/api/auth/verify-email": "GET, HEAD", "/api/auth/delete-user": "POST",
		"/api/auth/token": "GET, HEAD", "/api/auth/jwks": "GET, HEAD", "/api/auth/ok": "GET, HEAD",
		"/healthz": "GET, HEAD", "/readyz": "GET, HEAD",
	} {
		mux.Handle(path, httpx.MethodNotAllowed(allow))
	}
}
