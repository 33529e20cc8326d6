package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/mail"
	"gatehouse.dev/authsvc/internal/mailtoken"
	"gatehouse.dev/authsvc/internal/password"
	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
)

// Better Auth's codes (core/error/codes) for the password endpoints.
var (
	errInvalidToken      = httpx.Errorf(http.StatusBadRequest, "INVALID_TOKEN", "Invalid token")
	errInvalidPassword   = httpx.Errorf(http.StatusBadRequest, "INVALID_PASSWORD", "Invalid password")
	errNoCredential      = httpx.Errorf(http.StatusBadRequest, "CREDENTIAL_ACCOUNT_NOT_FOUND", "Credential account not found")
	errInvalidRedirect   = httpx.Errorf(http.StatusForbidden, "INVALID_REDIRECT_URL", "Invalid redirectURL")
	errValidationInvalid = func(field, want string) error {
		return validationError("[body." + field + "] Invalid input: expected " + want + ", received undefined")
	}
)

// resetMessage is Better Auth's answer to request-password-reset, the same
// whether or not the email has an account.
var resetMessage = map[string]any{
	"status":  true,
	"message": "If this email exists in our system, check your email for the reset link",
}

type changePasswordRequest struct {
	NewPassword         *string `json:"newPassword"`
	CurrentPassword     *string `json:"currentPassword"`
	RevokeOtherSessions *bool   `json:"revokeOtherSessions"`
}

type changePasswordResponse struct {
	Token *string  `json:"token"`
	User  userJSON `json:"user"`
}

// handlePasswordChange is Better Auth's POST /change-password. With
// revokeOtherSessions every session of the user ends (their JWTs are
// revoked at the proxies) and the caller gets a new one, as Better Auth
// does. Either way outstanding reset links stop working.
func handlePasswordChange(d *deps) http.Handler {
	return sessionHandler(d, func(w http.ResponseWriter, r *http.Request, cur *current) error {
		q, err := decode[changePasswordRequest](w, r, false)
		if err != nil {
			return err
		}
		switch {
		case q.NewPassword == nil:
			return errValidationInvalid("newPassword", "string")
		case q.CurrentPassword == nil:
			return errValidationInvalid("currentPassword", "string")
		}
		if err := checkNewPassword(d, *q.NewPassword); err != nil {
			return err
		}
		if passwordLen(*q.CurrentPassword) > maxPasswordLen {
			return errPasswordLong
		}
		if cur.user.PasswordHash == "" {
			return errNoCredential
		}
		hash, err := d.hashNew(r, *q.NewPassword)
		if err != nil {
			return err
		}
		if err := d.checkCurrent(r, cur.user, *q.CurrentPassword); err != nil {
			return err
		}
		revokeOthers := q.RevokeOtherSessions != nil && *q.RevokeOtherSessions
		var (
			ended    []string
			newSess  *session.Session
			newToken string
		)
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		err = d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if revokeOthers {
				var err error
				if ended, err = d.sessions(tx).DeleteForUser(ctx, cur.user.ID, ""); err != nil {
					return err
				}
				if newSess, newToken, err = d.sessions(tx).Create(ctx, session.New{
					UserID: cur.user.ID, Remember: cur.sess.Remember, IPAddress: clientIP(r), UserAgent: r.UserAgent(),
				}); err != nil {
					return err
				}
			}
			if err := d.users(tx).SetPasswordHash(ctx, cur.user.ID, hash); err != nil {
				return err
			}
			return d.tokens(tx).DeleteForUser(ctx, mailtoken.ResetPassword, cur.user.ID)
		})
		if err != nil {
			return err
		}
		d.revoke(r, ended...)
		resp := changePasswordResponse{User: userView(cur.user)}
		if newSess != nil {
			if err := d.startSession(w, cur.user, newSess, newToken, cur.sess.Remember); err != nil {
				return err
			}
			resp.Token = &newToken
		}
		httpx.AddLogFields(r.Context(), zap.Int("sessions_revoked", len(ended)))
		httpx.WriteJSON(w, http.StatusOK, resp)
		return nil
	})
}

type requestResetRequest struct {
	Email      *string `json:"email"`
	RedirectTo *string `json:"redirectTo"`
}

// handlePasswordResetRequest is Better Auth's POST /request-password-reset:
// it mails a reset link to the account with that email, if there is one.
// The answer is the same 200 either way, and not sooner than
// MAIL_ANSWER_FLOOR, after the same lookups and token generation, so
// neither body nor timing tells whether the email has an account. Only a
// failed send (503) differs, since the caller must learn that no mail is
// coming; the per-email quota counts unknown addresses too.
func handlePasswordResetRequest(d *deps, guard *originGuard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := requestReset(w, r, d, guard); err != nil {
			fail(w, r, err)
		}
	})
}

func requestReset(w http.ResponseWriter, r *http.Request, d *deps, guard *originGuard) error {
	start := time.Now()
	q, err := decode[requestResetRequest](w, r, false)
	if err != nil {
		return err
	}
	email, err := mailAddress(q.Email)
	if err != nil {
		return err
	}
	redirectTo := ""
	if q.RedirectTo != nil && *q.RedirectTo != "" {
		if !guard.trustedRedirect(*q.RedirectTo) {
			return errInvalidRedirect
		}
		redirectTo = *q.RedirectTo
	}
	if !d.mail.Enabled() {
		return errResetDisabled
	}
	if err := d.mailQuota(r, email); err != nil {
		return err
	}
	err = d.mailReset(r, email, redirectTo)
	d.answerFloor(r.Context(), start)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, resetMessage)
	return nil
}

// mailReset mails a reset link if email has an account, and otherwise does
// the same work short of the mail: a token, its hash, a token lookup.
func (d *deps) mailReset(r *http.Request, email, redirectTo string) error {
	ctx, cancel := d.dbCtx(r.Context())
	u, err := d.users(d.db).ByEmail(ctx, email)
	cancel()
	switch {
	case errors.Is(err, user.ErrNotFound):
		token, _ := mailtoken.New()
		ctx, cancel := d.dbCtx(r.Context())
		_, _ = d.tokens(d.db).Peek(ctx, mailtoken.ResetPassword, token)
		cancel()
		_ = resetMail(d.resetLink(token, redirectTo))
		return nil
	case err != nil:
		return err
	}
	httpx.AddLogFields(r.Context(), zap.String("user_id", u.ID))
	return d.sendTokenMail(r, mailtoken.ResetPassword, u, func(token string) mail.Message {
		return resetMail(d.resetLink(token, redirectTo))
	})
}

// resetLink is Better Auth's link:
// <base>/api/auth/reset-password/<token>?callbackURL=<redirectTo>.
func (d *deps) resetLink(token, redirectTo string) string {
	return d.apiURL("/reset-password/"+url.PathEscape(token), url.Values{"callbackURL": {redirectTo}})
}

// handlePasswordResetLink is the link in the mail, Better Auth's
// GET /reset-password/:token?callbackURL=: it redirects (302) to
// callbackURL with ?token=<token> while the token is live, else with
// ?error=INVALID_TOKEN. It does not use the token up.
func handlePasswordResetLink(d *deps, guard *originGuard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.PathValue("token")
		callback := r.URL.Query().Get("callbackURL")
		if callback != "" && !guard.trustedRedirect(callback) {
			fail(w, r, errInvalidCallback)
			return
		}
		if callback == "" {
			// As Better Auth: without a page to send the user to, the
			// error page of the auth server.
			redirect(w, d.apiURL("/error", url.Values{"error": {"INVALID_TOKEN"}}))
			return
		}
		ctx, cancel := d.dbCtx(r.Context())
		_, err := d.tokens(d.db).Peek(ctx, mailtoken.ResetPassword, token)
		cancel()
		switch {
		case err == nil:
			redirect(w, withQuery(callback, "token", token))
		case errors.Is(err, mailtoken.ErrInvalid), errors.Is(err, mailtoken.ErrExpired):
			redirect(w, withQuery(callback, "error", "INVALID_TOKEN"))
		default:
			fail(w, r, err)
		}
	})
}

type resetPasswordRequest struct {
	NewPassword *string `json:"newPassword"`
	Token       *string `json:"token"`
}

// handlePasswordReset is Better Auth's POST /reset-password
// {newPassword, token}: it sets the password, uses the token up, and ends
// every session of the user (SPEC.md: and so every JWT at the proxies).
func handlePasswordReset(d *deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := resetPassword(w, r, d); err != nil {
			fail(w, r, err)
		}
	})
}

func resetPassword(w http.ResponseWriter, r *http.Request, d *deps) error {
	q, err := decode[resetPasswordRequest](w, r, false)
	if err != nil {
		return err
	}
	if q.NewPassword == nil {
		return errValidationInvalid("newPassword", "string")
	}
	token := r.URL.Query().Get("token")
	if q.Token != nil && *q.Token != "" {
		token = *q.Token
	}
	if strings.TrimSpace(token) == "" {
		return errInvalidToken
	}
	if err := checkNewPassword(d, *q.NewPassword); err != nil {
		return err
	}
	hash, err := d.hashNew(r, *q.NewPassword)
	if err != nil {
		return err
	}
	var (
		ended  []string
		userID string
	)
	ctx, cancel := d.dbCtx(r.Context())
	defer cancel()
	err = d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		t, err := d.tokens(tx).Consume(ctx, mailtoken.ResetPassword, token)
		if errors.Is(err, mailtoken.ErrInvalid) || errors.Is(err, mailtoken.ErrExpired) {
			return errInvalidToken
		}
		if err != nil {
			return err
		}
		userID = t.UserID
		if err := d.users(tx).SetPasswordHash(ctx, t.UserID, hash); err != nil {
			return err
		}
		// Every other reset link of the user goes too: one reset per mail.
		if err := d.tokens(tx).DeleteForUser(ctx, mailtoken.ResetPassword, t.UserID); err != nil {
			return err
		}
		ended, err = d.sessions(tx).DeleteForUser(ctx, t.UserID, "")
		return err
	})
	if errors.Is(err, errInvalidToken) {
		return errInvalidToken // the transaction rolled back; the token was not live anyway
	}
	if err != nil {
		return err
	}
	httpx.AddLogFields(r.Context(), zap.String("user_id", userID), zap.Int("sessions_revoked", len(ended)))
	d.revoke(r, ended...)
	// The caller's own cookies, if any, belonged to one of those sessions.
	if _, ok := d.cookies.sessionToken(r); ok {
		d.cookies.expire(w)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"status": true})
	return nil
}

// checkNewPassword applies sign-up's rules to a new password.
func checkNewPassword(d *deps, pw string) error {
	if err := checkPassword(pw); err != nil {
		return err
	}
	if password.Common(pw) {
		d.metrics.signUpCommon.Inc()
		return errPasswordCommon
	}
	return nil
}

// hashNew hashes a new password under the hashing bound.
func (d *deps) hashNew(r *http.Request, pw string) (string, error) {
	hctx, cancel := d.hashCtx(r.Context())
	defer cancel()
	hash, err := d.hasher.Hash(hctx, pw)
	if err != nil {
		return "", busy(err)
	}
	return hash, nil
}

// checkCurrent verifies the user's current password: 400 INVALID_PASSWORD
// when it does not match (Better Auth's answer on change-password and
// delete-user). Each check counts against the account like a sign-in
// (slowDown): a stolen session must not become an unthrottled oracle for
// the password that would let it take the account over.
func (d *deps) checkCurrent(r *http.Request, u *user.User, pw string) error {
	if err := d.slowDown(r, u.Email); err != nil {
		return err
	}
	hctx, cancel := d.hashCtx(r.Context())
	defer cancel()
	ok, _, err := d.hasher.Verify(hctx, pw, u.PasswordHash)
	if err != nil {
		d.signInUndecided(r, u.Email)
		return busy(err)
	}
	if !ok {
		return errInvalidPassword
	}
	d.signInSucceeded(r, u.Email)
	return nil
}

// sessionHandler runs f for the caller's live session, or answers 401
// UNAUTHORIZED without one (Better Auth's sessionMiddleware).
func sessionHandler(d *deps, f func(http.ResponseWriter, *http.Request, *current) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, err := currentSession(w, r, d)
		if err == nil && cur == nil {
			err = errUnauthorized
		}
		if err == nil {
			err = f(w, r, cur)
		}
		if err != nil {
			fail(w, r, err)
		}
	})
}
