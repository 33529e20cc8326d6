package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/kit/httpx"
)

// revoke tells the proxies (through Redis, internal/revoke) that the
// sessions sids ended, so their unexpired JWTs stop working now. The
// sessions are already deleted, so this never fails the request: with
// Redis down the revocations wait in a retry queue, and the failure is
// logged and counted (revocations_failed_total).
func (d *deps) revoke(r *http.Request, sids ...string) {
	// Its own deadline, not the request's: a client that hangs up after
	// signing out must not cancel the revocation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*d.cfg.RedisTimeout)
	defer cancel()
	if err := d.revoker.Revoke(ctx, sids...); err != nil {
		httpx.LogFrom(r.Context()).Warn("session revocation not published yet; retrying in the background "+
			"(the proxies accept its access tokens until it lands)",
			zap.Int("sessions", len(sids)), zap.Error(err))
	}
}

type revokeSessionRequest struct {
	Token *string `json:"token"`
}

// handleSessionsRevoke is Better Auth's "sign out everywhere"
// (POST /revoke-sessions): it deletes every session of the caller, revokes
// their access tokens at the proxies and expires the caller's cookies.
func handleSessionsRevoke(d *deps) http.Handler {
	return revokeHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) ([]string, error) {
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		ids, err := d.sessions(d.db).DeleteForUser(ctx, cur.user.ID, "")
		if err == nil {
			d.cookies.expire(w)
		}
		return ids, err
	})
}

// handleOtherSessionsRevoke is Better Auth's POST /revoke-other-sessions:
// every session of the caller but the current one ends.
func handleOtherSessionsRevoke(d *deps) http.Handler {
	return revokeHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) ([]string, error) {
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		return d.sessions(d.db).DeleteForUser(ctx, cur.user.ID, cur.sess.ID)
	})
}

// handleSessionRevoke is Better Auth's POST /revoke-session {token}: it ends
// one of the caller's own sessions, named by its token or (as list-sessions
// shows other sessions) its id. Another user's token, or an unknown
// one, changes nothing and answers the same {"status": true}, so the
// endpoint cannot be used to test whether a token is live.
func handleSessionRevoke(d *deps) http.Handler {
	return revokeHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) ([]string, error) {
		q, err := decode[revokeSessionRequest](w, r, false)
		if err == nil && q.Token == nil {
			err = validationError("[body.token] Invalid input: expected string, received undefined")
		}
		if err != nil {
			return nil, err
		}
		token := strings.TrimSpace(*q.Token)
		if token == "" {
			return nil, nil
		}
		store := d.sessions(d.db)
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		sess, err := store.Find(ctx, token)
		if errors.Is(err, session.ErrNotFound) {
			// list-sessions shows other sessions by id (their tokens are
			// stored hashed): an id of the caller's own session works too.
			ok, err := store.DeleteOwned(ctx, cur.user.ID, token)
			if err != nil || !ok {
				return nil, err
			}
			if token == cur.sess.ID {
				d.cookies.expire(w)
			}
			return []string{token}, nil
		}
		if err == nil && sess.UserID != cur.user.ID {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sid, err := store.Delete(ctx, token)
		if err != nil {
			return nil, err
		}
		if sid == cur.sess.ID {
			d.cookies.expire(w)
		}
		return []string{sid}, nil
	})
}

// revokeHandler runs end for the caller's live session (401 UNAUTHORIZED
// without one, as Better Auth's sensitiveSessionMiddleware), publishes the
// revocation of the session ids it deleted, and answers {"status": true}.
func revokeHandler(d *deps, end func(http.ResponseWriter, *http.Request, *current) ([]string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, err := currentSession(w, r, d)
		if err == nil && cur == nil {
			err = errUnauthorized
		}
		var ids []string
		if err == nil {
			ids, err = end(w, r, cur)
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		d.revoke(r, ids...)
		httpx.AddLogFields(r.Context(), zap.Int("sessions_revoked", len(ids)))
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"status": true})
	})
}
