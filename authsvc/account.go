package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/outbox"
	"gatehouse.dev/authsvc/internal/revoke"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
)

// freshAge is Better Auth's session.freshAge default: list-sessions, and
// delete-user without a password, need a session younger than this.
const freshAge = 24 * time.Hour

var (
	errEmailNotUpdatable = httpx.Errorf(http.StatusBadRequest, "EMAIL_CAN_NOT_BE_UPDATED", "Email can not be updated")
	errNoFields          = httpx.Errorf(http.StatusBadRequest, "BAD_REQUEST", "No fields to update")
	errSessionNotFresh   = httpx.Errorf(http.StatusForbidden, "SESSION_NOT_FRESH", "Session is not fresh")
	errSessionExpired    = httpx.Errorf(http.StatusBadRequest, "SESSION_EXPIRED", "Session expired. Re-authenticate to perform this action.")
	errDeleteToken       = httpx.Errorf(http.StatusNotFound, "INVALID_TOKEN", "Invalid token")
	errBodyNotObject     = httpx.Errorf(http.StatusBadRequest, "BODY_MUST_BE_AN_OBJECT", "Body must be an object")
	errFieldNotAllowed   = httpx.Errorf(http.StatusBadRequest, "FIELD_NOT_ALLOWED", "Field not allowed to be set")
)

// handleUserUpdate is Better Auth's POST /update-user {name?, image?}
// (image may be null to clear it). Email cannot change here (400
// EMAIL_CAN_NOT_BE_UPDATED); fields Better Auth's user has but a client may
// not set are refused, unknown ones ignored as its schema does.
func handleUserUpdate(d *deps) http.Handler {
	return sessionHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) error {
		body, err := decode[map[string]json.RawMessage](w, r, false)
		if err != nil {
			return err
		}
		if body == nil {
			return errBodyNotObject
		}
		if v, ok := body["email"]; ok && !isNullOrEmpty(v) {
			return errEmailNotUpdatable
		}
		for _, k := range []string{"id", "emailVerified", "createdAt", "updatedAt"} {
			if _, ok := body[k]; ok {
				return errFieldNotAllowed
			}
		}
		var p user.Profile
		if v, ok := body["name"]; ok {
			var name string
			if json.Unmarshal(v, &name) != nil {
				return validationError("[body.name] Invalid input: expected string")
			}
			p.Name = &name
		}
		if v, ok := body["image"]; ok {
			var img *string
			if json.Unmarshal(v, &img) != nil {
				return validationError("[body.image] Invalid input: expected string or null")
			}
			p.Image = &img
		}
		if p.Name == nil && p.Image == nil {
			return errNoFields
		}
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		if _, err := d.users(d.db).Update(ctx, cur.user.ID, p); err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"status": true})
		return nil
	})
}

func isNullOrEmpty(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return string(v) == "null" || string(v) == `""` || string(v) == "false"
}

// handleSessionsList is Better Auth's GET /list-sessions: the caller's live
// sessions (403 SESSION_NOT_FRESH when the caller's own is older than a
// day). Tokens are stored hashed, so each session's "token" is its id — a
// handle /revoke-session accepts for the caller's own sessions — except
// the caller's current session, which shows the caller's own token.
func handleSessionsList(d *deps) http.Handler {
	return sessionHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) error {
		if time.Since(cur.sess.CreatedAt) >= freshAge {
			return errSessionNotFresh
		}
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		list, err := d.sessions(d.db).ListForUser(ctx, cur.user.ID)
		if err != nil {
			return err
		}
		out := make([]sessionJSON, 0, len(list))
		for i := range list {
			tok := list[i].ID
			if list[i].ID == cur.sess.ID {
				tok = cur.token
			}
			out = append(out, sessionView(&list[i], tok))
		}
		httpx.WriteJSON(w, http.StatusOK, out)
		return nil
	})
}

type deleteUserRequest struct {
	Password    *string `json:"password"`
	Token       *string `json:"token"`
	CallbackURL *string `json:"callbackURL"`
}

// handleUserDelete is Better Auth's POST /delete-user {password}: with the
// right password (400 INVALID_PASSWORD otherwise), or without one from a
// session younger than a day (400 SESSION_EXPIRED otherwise), it deletes
// the user and their sessions, revokes their JWTs at the proxies, and
// records a user.deleted event in the same transaction, which
// internal/outbox relays to the backend (which deletes their todos) at
// least once, also if the backend or Redis is down right now.
func handleUserDelete(d *deps) http.Handler {
	return sessionHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) error {
		q, err := decode[deleteUserRequest](w, r, true)
		if err != nil {
			return err
		}
		switch {
		case q.Password != nil && *q.Password != "":
			if passwordLen(*q.Password) > maxPasswordLen {
				return errPasswordLong
			}
			if cur.user.PasswordHash == "" {
				return errNoCredential
			}
			if err := d.checkCurrent(r, cur.user, *q.Password); err != nil {
				return err
			}
		case q.Token != nil && *q.Token != "":
			return errDeleteToken // deletion by mailed token is not offered
		case time.Since(cur.sess.CreatedAt) >= freshAge:
			return errSessionExpired
		}
		// The second announcement comes when every JWT of the user has
		// expired at the proxies (outbox package doc).
		later := time.Now().Add(d.cfg.JWTTTL + revoke.Margin)
		var ended []string
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		err = d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if ended, err = d.sessions(tx).DeleteForUser(ctx, cur.user.ID, ""); err != nil {
				return err
			}
			if err := d.users(tx).Delete(ctx, cur.user.ID); err != nil {
				return err
			}
			return outbox.Add(ctx, tx, outbox.UserDeleted, cur.user.ID, time.Now(), later)
		})
		if errors.Is(err, user.ErrNotFound) {
			return errUnauthorized // deleted by a concurrent request
		}
		if err != nil {
			return err
		}
		d.revoke(r, ended...)
		d.relay.Kick()
		d.cookies.expire(w)
		httpx.AddLogFields(r.Context(), zap.Int("sessions_revoked", len(ended)))
		httpx.LogFrom(r.Context()).Info("user deleted")
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "message": "User deleted"})
		return nil
	})
}
