package main

import (
	"net/http"

	"gatehouse.dev/authsvc/internal/keys"
	"gatehouse.dev/kit/httpx"
)

// handleTokenGet answers {"token": "<jwt>"} for the session cookie, or 401.
func handleTokenGet(d *deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, err := currentSession(w, r, d)
		if err != nil {
			fail(w, r, err)
			return
		}
		if cur == nil {
			fail(w, r, errUnauthorized)
			return
		}
		jwt, err := d.issueJWT(cur.user, cur.sess)
		if err != nil {
			fail(w, r, err)
			return
		}
		d.cookies.setAccess(w, jwt)
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"token": jwt})
	})
}

// handleJWKS publishes the verification keys. Short public caching is
// fine: a rotated key is published 10 minutes before it signs anything.
func handleJWKS(ks *keys.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Del("Pragma")
		httpx.WriteJSON(w, http.StatusOK, map[string][]keys.JWK{"keys": ks.JWKS()})
	})
}

// handleOK is Better Auth's liveness endpoint.
func handleOK() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
}
