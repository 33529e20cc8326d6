package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/mail"
	"gatehouse.dev/authsvc/internal/mailtoken"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
)

var (
	errEmailMismatch   = httpx.Errorf(http.StatusBadRequest, "EMAIL_MISMATCH", "Email mismatch")
	errAlreadyVerified = httpx.Errorf(http.StatusBadRequest, "EMAIL_ALREADY_VERIFIED", "Email is already verified")
	errNotVerified     = httpx.Errorf(http.StatusForbidden, "EMAIL_NOT_VERIFIED", "Email not verified")
)

type sendVerificationRequest struct {
	Email       *string `json:"email"`
	CallbackURL *string `json:"callbackURL"`
}

// handleVerificationSend is Better Auth's POST /send-verification-email
// {email, callbackURL?}. Signed in, it mails the caller's own address (400
// EMAIL_MISMATCH for another, EMAIL_ALREADY_VERIFIED when done). Signed
// out, it answers {"status": true} for any address, no sooner than
// MAIL_ANSWER_FLOOR, and mails only an existing, unverified account.
func handleVerificationSend(d *deps, guard *originGuard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sendVerification(w, r, d, guard); err != nil {
			fail(w, r, err)
		}
	})
}

func sendVerification(w http.ResponseWriter, r *http.Request, d *deps, guard *originGuard) error {
	start := time.Now()
	q, err := decode[sendVerificationRequest](w, r, false)
	if err != nil {
		return err
	}
	email, err := mailAddress(q.Email)
	if err != nil {
		return err
	}
	callback := "/"
	if q.CallbackURL != nil && *q.CallbackURL != "" {
		if !guard.trustedRedirect(*q.CallbackURL) {
			return errInvalidCallback
		}
		callback = *q.CallbackURL
	}
	if !d.mail.Enabled() {
		return errVerifyDisabled
	}
	cur, err := currentSession(w, r, d)
	if err != nil {
		return err
	}
	if cur != nil {
		switch {
		case normEmail(cur.user.Email) != email:
			return errEmailMismatch
		case cur.user.EmailVerified:
			return errAlreadyVerified
		}
		if err := d.mailQuota(r, email); err != nil {
			return err
		}
		if err := d.mailVerification(r, cur.user, callback); err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"status": true})
		return nil
	}

	if err := d.mailQuota(r, email); err != nil {
		return err
	}
	ctx, cancel := d.dbCtx(r.Context())
	u, err := d.users(d.db).ByEmail(ctx, email)
	cancel()
	switch {
	case errors.Is(err, user.ErrNotFound) || err == nil && u.EmailVerified:
		token, _ := mailtoken.New() // the same work, short of the mail
		ctx, cancel := d.dbCtx(r.Context())
		_, _ = d.tokens(d.db).Peek(ctx, mailtoken.VerifyEmail, token)
		cancel()
		err = nil
	case err == nil:
		err = d.mailVerification(r, u, callback)
	}
	d.answerFloor(r.Context(), start)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"status": true})
	return nil
}

// mailVerification mails u a verification link (Better Auth's:
// <base>/api/auth/verify-email?token=…&callbackURL=…).
func (d *deps) mailVerification(r *http.Request, u *user.User, callback string) error {
	httpx.AddLogFields(r.Context(), zap.String("user_id", u.ID))
	err := d.sendTokenMail(r, mailtoken.VerifyEmail, u, func(token string) mail.Message {
		return verifyMail(d.apiURL("/verify-email", url.Values{"token": {token}, "callbackURL": {callback}}))
	})
	if errors.Is(err, errResetDisabled) {
		return errVerifyDisabled
	}
	return err
}

// handleEmailVerify is Better Auth's GET /verify-email?token=&callbackURL=:
// it marks the address the link was sent to as verified and uses the token
// up. With a callbackURL it redirects there (with ?error=INVALID_TOKEN or
// TOKEN_EXPIRED on failure); without, it answers {"status": true,
// "user": null} or 401 with the error code.
func handleEmailVerify(d *deps, guard *originGuard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		callback := q.Get("callbackURL")
		if callback != "" && !guard.trustedRedirect(callback) {
			fail(w, r, errInvalidCallback)
			return
		}
		onError := func(code, msg string) {
			if callback != "" {
				redirect(w, withQuery(callback, "error", code))
				return
			}
			fail(w, r, httpx.Errorf(http.StatusUnauthorized, code, msg))
		}
		if q.Get("token") == "" {
			fail(w, r, validationError("[query.token] Invalid input: expected string, received undefined"))
			return
		}
		ctx, cancel := d.dbCtx(r.Context())
		defer cancel()
		var uid string
		err := d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			t, err := d.tokens(tx).Consume(ctx, mailtoken.VerifyEmail, q.Get("token"))
			if err != nil {
				return err
			}
			uid = t.UserID
			// Only the address the mail went to; after an email change the
			// old link proves nothing about the new address.
			return d.users(tx).SetEmailVerified(ctx, t.UserID, t.Email)
		})
		switch {
		case errors.Is(err, mailtoken.ErrExpired):
			onError("TOKEN_EXPIRED", "Token expired")
			return
		case errors.Is(err, mailtoken.ErrInvalid), errors.Is(err, user.ErrNotFound):
			onError("INVALID_TOKEN", "Invalid token")
			return
		case err != nil:
			fail(w, r, err)
			return
		}
		httpx.AddLogFields(r.Context(), zap.String("user_id", uid))
		if callback != "" {
			redirect(w, callback)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": true, "user": nil})
	})
}
