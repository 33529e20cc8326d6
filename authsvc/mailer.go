package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/mail"
	"gatehouse.dev/authsvc/internal/mailtoken"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
)

var (
	// Better Auth's codes for "this server cannot mail", with 501: the
	// request was fine, the server lacks the feature (SMTP_URL is empty).
	errResetDisabled = httpx.Errorf(http.StatusNotImplemented, "RESET_PASSWORD_DISABLED",
		"Reset password isn't enabled: this server has no mail configured (SMTP_URL).")
	errVerifyDisabled = httpx.Errorf(http.StatusNotImplemented, "VERIFICATION_EMAIL_NOT_ENABLED",
		"Verification email isn't enabled: this server has no mail configured (SMTP_URL).")
	errMailFailed = &httpx.Error{Status: http.StatusServiceUnavailable, Code: "MAIL_SEND_FAILED",
		Message: "The email could not be sent. Try again in a few minutes.", RetryAfter: 60}
)

// mailLimited is the answer when a recipient or client has had its share
// of mails for the hour.
func mailLimited(retry time.Duration) error {
	return &httpx.Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED",
		Message: "Too many emails requested. Try again later.", RetryAfter: int(retry.Round(time.Second) / time.Second)}
}

// mailQuota counts one mail to email from the caller's IP; it answers 429
// when either is over its hourly limit.
func (d *deps) mailQuota(r *http.Request, email string) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*d.cfg.RedisTimeout)
	defer cancel()
	ok, retry, fallback := d.quota.Take(ctx, email, clientIP(r))
	if fallback {
		httpx.LogFrom(r.Context()).Warn("mail quota counted in this process only: Redis unavailable")
	}
	if !ok {
		d.metrics.mailLimited.Inc()
		w := httpx.LogFrom(r.Context())
		w.Info("mail refused: hourly limit reached", zap.String("account", accountTag(d.cfg.AuthSecret, email)))
		return mailLimited(retry)
	}
	return nil
}

// sendTokenMail issues a token for u, mails it, and keeps it only if the
// mail went out: on failure the token is deleted (no usable token without
// a sent mail) and the caller gets 503 MAIL_SEND_FAILED; on success older
// tokens of u for the purpose stop working.
func (d *deps) sendTokenMail(r *http.Request, p mailtoken.Purpose, u *user.User, compose func(token string) mail.Message) error {
	log := httpx.LogFrom(r.Context())
	// The mail and the token's bookkeeping finish even if the client hangs up.
	ctx := context.WithoutCancel(r.Context())
	dctx, cancel := d.dbCtx(ctx)
	token, id, err := d.tokens(d.db).Issue(dctx, p, u.ID, u.Email)
	cancel()
	if err != nil {
		return err
	}
	m := compose(token)
	m.To = u.Email
	sctx, scancel := context.WithTimeout(ctx, 3*d.cfg.SMTPTimeout+time.Second)
	err = d.mail.Send(sctx, m)
	scancel()
	dctx, cancel = d.dbCtx(ctx)
	defer cancel()
	if err != nil {
		d.metrics.mails.WithLabelValues(string(p), "failed").Inc()
		// Not the error text itself: an SMTP reply may quote the address.
		log.Error("mail not sent; its token is discarded", zap.String("purpose", string(p)), zap.String("smtp_error", mail.Describe(err)))
		if derr := d.tokens(d.db).Discard(dctx, id); derr != nil {
			// It cannot be used anyway: nobody ever saw it. It expires within the hour.
			log.Warn("unsent token not discarded", zap.Error(derr))
		}
		if errors.Is(err, mail.ErrNotConfigured) {
			return errResetDisabled
		}
		return errMailFailed
	}
	d.metrics.mails.WithLabelValues(string(p), "sent").Inc()
	if err := d.tokens(d.db).Supersede(dctx, p, u.ID, id); err != nil {
		log.Warn("older tokens not superseded", zap.Error(err))
	}
	return nil
}

// answerFloor waits until MAIL_ANSWER_FLOOR has passed since start, so the
// answer's timing does not tell whether a mail was sent.
func (d *deps) answerFloor(ctx context.Context, start time.Time) {
	wait := time.Until(start.Add(d.cfg.MailAnswerFloor))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// apiURL is the public URL of an authsvc path under /api/auth.
func (d *deps) apiURL(path string, q url.Values) string {
	s := d.cfg.BaseURL + "/api/auth" + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

func resetMail(link string) mail.Message {
	return mail.Message{
		Subject: "Reset your password",
		Text: "Someone (hopefully you) asked to reset the password of your account.\n\n" +
			"Open this link within an hour to choose a new one:\n\n" + link + "\n\n" +
			"If you did not ask for this, ignore this email: your password stays as it is.\n",
		HTML: page("Reset your password",
			"<p>Someone (hopefully you) asked to reset the password of your account.</p>"+
				`<p><a href="`+html.EscapeString(link)+`">Choose a new password</a> (the link works for an hour).</p>`+
				"<p>If you did not ask for this, ignore this email: your password stays as it is.</p>"),
	}
}

func verifyMail(link string) mail.Message {
	return mail.Message{
		Subject: "Verify your email address",
		Text: "Please confirm that this is your email address by opening this link within an hour:\n\n" +
			link + "\n\nIf you did not create an account, ignore this email.\n",
		HTML: page("Verify your email address",
			`<p>Please confirm that this is your email address:</p>`+
				`<p><a href="`+html.EscapeString(link)+`">Verify my email address</a> (the link works for an hour).</p>`+
				"<p>If you did not create an account, ignore this email.</p>"),
	}
}

func page(title, body string) string {
	return fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"><title>%s</title></head>`+
		`<body style="font-family:sans-serif;line-height:1.5">%s</body></html>`, html.EscapeString(title), body)
}

// withQuery appends k=v to a callback URL (absolute or a same-site path),
// keeping its existing query, as Better Auth's redirectCallback does.
func withQuery(callback, k, v string) string {
	u, err := url.Parse(callback)
	if err != nil {
		return callback
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// redirect answers 302 to loc (Better Auth's ctx.redirect).
func redirect(w http.ResponseWriter, loc string) {
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusFound)
}

// normEmail lower-cases and trims, as sign-up stores emails.
func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// mailAddress reads the email field of a mail-sending request
// (request-password-reset, send-verification-email), with Better Auth's
// validation errors.
func mailAddress(p *string) (string, error) {
	if p == nil {
		return "", errValidationInvalid("email", "string")
	}
	email := normEmail(*p)
	if !validEmail(email) {
		return "", validationError("[body.email] Invalid email address")
	}
	return email, nil
}
