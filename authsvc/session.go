package main

import (
	"errors"
	"net/http"

	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
	"go.uber.org/zap"
)

// current is the caller's live session, found from the session cookie.
type current struct {
	sess  *session.Session
	user  *user.User
	token string
}

// currentSession looks up the session cookie. It returns nil (and no error)
// when there is no valid session; when the cookie named a session that no
// longer exists, it also expires the cookies, as Better Auth does. A live,
// remembered session older than a day slides forward and its cookie is
// re-issued (Better Auth's updateAge), unless disableRefresh=true.
func currentSession(w http.ResponseWriter, r *http.Request, d *deps) (*current, error) {
	token, ok := d.cookies.sessionToken(r)
	if !ok {
		return nil, nil
	}
	store := d.sessions(d.db)
	ctx, cancel := d.dbCtx(r.Context())
	defer cancel()
	sess, err := store.Find(ctx, token)
	if errors.Is(err, session.ErrNotFound) {
		d.cookies.expire(w)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u, err := d.users(d.db).ByID(ctx, sess.UserID)
	if errors.Is(err, user.ErrNotFound) {
		d.cookies.expire(w)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if store.NeedsRefresh(sess) && r.URL.Query().Get("disableRefresh") != "true" {
		up, err := store.Refresh(ctx, sess)
		if errors.Is(err, session.ErrNotFound) { // signed out meanwhile
			d.cookies.expire(w)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sess = up
		d.cookies.setSession(w, token, true)
	}
	httpx.AddLogFields(r.Context(), zap.String("user_id", u.ID))
	return &current{sess: sess, user: u, token: token}, nil
}

type sessionResponse struct {
	Session sessionJSON `json:"session"`
	User    userJSON    `json:"user"`
}

// handleSessionGet answers {session, user} or null, and with a session
// also a fresh JWT in set-auth-jwt (Better Auth's jwt plugin) and the
// access-token cookie.
func handleSessionGet(d *deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, err := currentSession(w, r, d)
		if err != nil {
			fail(w, r, err)
			return
		}
		if cur == nil {
			httpx.WriteJSON(w, http.StatusOK, nil)
			return
		}
		jwt, err := d.issueJWT(cur.user, cur.sess)
		if err != nil {
			fail(w, r, err)
			return
		}
		d.cookies.setAccess(w, jwt)
		w.Header().Set("Set-Auth-Jwt", jwt)
		w.Header().Set("Access-Control-Expose-Headers", "set-auth-jwt")
		httpx.WriteJSON(w, http.StatusOK, sessionResponse{Session: sessionView(cur.sess, cur.token), User: userView(cur.user)})
	})
}

// handleSignOut deletes the session server-side and expires both cookies.
// Without a session it still succeeds, as Better Auth does.
func handleSignOut(d *deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := decode[struct{}](w, r, true); err != nil {
			fail(w, r, err)
			return
		}
		if token, ok := d.cookies.sessionToken(r); ok {
			ctx, cancel := d.dbCtx(r.Context())
			sid, err := d.sessions(d.db).Delete(ctx, token)
			cancel()
			if err != nil {
				// Unlike Better Auth (which swallows this), report it: the
				// client must not believe a live session is gone.
				fail(w, r, err)
				return
			}
			d.revoke(r, sid)
		}
		d.cookies.expire(w)
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"success": true})
	})
}
