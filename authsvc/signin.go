package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/authsvc/internal/throttle"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
)

type signInRequest struct {
	Email       *string `json:"email"`
	Password    *string `json:"password"`
	CallbackURL *string `json:"callbackURL"`
	RememberMe  *bool   `json:"rememberMe"`
}

func (q signInRequest) valid() error {
	var missing []string
	if q.Email == nil {
		missing = append(missing, "[body.email] Invalid input: expected string, received undefined")
	}
	if q.Password == nil {
		missing = append(missing, "[body.password] Invalid input: expected string, received undefined")
	}
	if len(missing) > 0 {
		return validationError(strings.Join(missing, "; "))
	}
	return nil
}

// handleSignInEmail checks a password and starts a session. An unknown
// email and a wrong password take the same path through argon2id (a dummy
// hash for the former) and produce byte-identical 401s; both count towards
// the per-account slow-down (slowDown), which runs before either.
func handleSignInEmail(d *deps, guard *originGuard) http.Handler {
	return counted(d.metrics.signIns, func(w http.ResponseWriter, r *http.Request) (string, error) {
		return signIn(w, r, d, guard)
	})
}

// counted serves f, counts its outcome on c, and answers its error.
func counted(c *prometheus.CounterVec, f func(http.ResponseWriter, *http.Request) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outcome, err := f(w, r)
		c.WithLabelValues(outcome).Inc()
		if err != nil {
			fail(w, r, err)
		}
	})
}

func signIn(w http.ResponseWriter, r *http.Request, d *deps, guard *originGuard) (outcome string, err error) {
	q, err := decode[signInRequest](w, r, false)
	if err == nil {
		err = q.valid()
	}
	if err != nil {
		return "invalid", err
	}
	email := strings.ToLower(strings.TrimSpace(*q.Email))
	if !validEmail(email) {
		return "invalid", errInvalidEmail
	}
	if passwordLen(*q.Password) > maxPasswordLen {
		return "invalid", errPasswordLong
	}
	callback := ""
	if q.CallbackURL != nil && *q.CallbackURL != "" {
		if !guard.trustedRedirect(*q.CallbackURL) {
			return "invalid", errInvalidCallback
		}
		callback = *q.CallbackURL
	}

	if err := d.slowDown(r, email); err != nil {
		return "abandoned", err
	}
	defer func() {
		// An attempt that ended without a verdict on the password (database
		// or hasher unavailable) does not count against the account.
		if outcome == "error" {
			d.signInUndecided(r, email)
		}
	}()

	ctx, cancel := d.dbCtx(r.Context())
	u, err := d.users(d.db).ByEmail(ctx, email)
	cancel()
	hctx, hcancel := d.hashCtx(r.Context())
	defer hcancel()
	switch {
	case errors.Is(err, user.ErrNotFound):
		if err := d.hasher.VerifyDummy(hctx, *q.Password); err != nil {
			return "error", busy(err)
		}
		return "invalid_credentials", errBadCredentials
	case err != nil:
		return "error", err
	case u.PasswordHash == "":
		// Imported without a password (a Better Auth social-only account):
		// only a reset can give it one.
		if err := d.hasher.VerifyDummy(hctx, *q.Password); err != nil {
			return "error", busy(err)
		}
		return "invalid_credentials", errBadCredentials
	}
	ok, rehash, err := d.hasher.Verify(hctx, *q.Password, u.PasswordHash)
	if err != nil {
		return "error", busy(err)
	}
	if !ok {
		return "invalid_credentials", errBadCredentials
	}
	httpx.AddLogFields(r.Context(), zap.String("user_id", u.ID))
	d.signInSucceeded(r, email)
	if rehash {
		d.rehash(r, u, *q.Password)
	}
	if d.cfg.RequireEmailVerification && !u.EmailVerified {
		return "unverified", errNotVerified
	}

	remember := q.RememberMe == nil || *q.RememberMe
	ctx, cancel = d.dbCtx(r.Context())
	sess, token, err := d.sessions(d.db).Create(ctx, session.New{
		UserID: u.ID, Remember: remember, IPAddress: clientIP(r), UserAgent: r.UserAgent(),
	})
	cancel()
	if err != nil {
		return "error", err
	}
	if err := d.startSession(w, u, sess, token, remember); err != nil {
		return "error", err
	}
	redirect := callback != ""
	if redirect {
		w.Header().Set("Location", callback)
	}
	httpx.WriteJSON(w, http.StatusOK, authResponse{Redirect: &redirect, Token: token, URL: callback, User: userView(u)})
	return "success", nil
}

// slowDown counts this attempt against the account (internal/throttle) and
// waits the delay its recent failures call for, before any password work.
// It returns an error only when the client went away meanwhile. Without
// Redis it lets the attempt through at once (fail open): the proxy's
// per-IP limit still bounds guessing, and an outage of this optional store
// must not stop everyone signing in.
func (d *deps) slowDown(r *http.Request, email string) error {
	if d.throttle == nil {
		return nil
	}
	log := httpx.LogFrom(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), 2*d.cfg.RedisTimeout)
	delay, err := d.throttle.Attempt(ctx, email)
	cancel()
	if err != nil {
		d.metrics.throttleUnavail.Inc()
		log.Warn("sign-in not counted per account: Redis unavailable (failing open; the per-IP limit still applies)", zap.Error(err))
		return nil
	}
	if delay <= 0 {
		return nil
	}
	d.metrics.signInThrottled.Inc()
	// account is a short hash, so the log can correlate attempts on one
	// account without holding its email.
	log.Info("sign-in slowed: recent failures for this account",
		zap.String("account", accountTag(d.cfg.AuthSecret, email)), zap.Duration("delay", delay))
	if !throttle.Wait(r.Context(), delay) {
		return r.Context().Err()
	}
	return nil
}

// signInUndecided refunds the attempt slowDown counted.
func (d *deps) signInUndecided(r *http.Request, email string) {
	if d.throttle == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*d.cfg.RedisTimeout)
	defer cancel()
	if err := d.throttle.Refund(ctx, email); err != nil {
		d.metrics.throttleUnavail.Inc()
		httpx.LogFrom(r.Context()).Warn("sign-in attempt not refunded: Redis unavailable", zap.Error(err))
	}
}

// signInSucceeded clears the account's failure count.
func (d *deps) signInSucceeded(r *http.Request, email string) {
	if d.throttle == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*d.cfg.RedisTimeout)
	defer cancel()
	if err := d.throttle.Succeeded(ctx, email); err != nil {
		d.metrics.throttleUnavail.Inc()
		httpx.LogFrom(r.Context()).Warn("sign-in failure count not reset: Redis unavailable", zap.Error(err))
	}
}

// accountTag is a log-safe stand-in for an email: 12 hex digits of an HMAC
// keyed with AUTH_SECRET, so a log reader cannot test guessed addresses.
func accountTag(secret, email string) string {
	m := hmac.New(sha256.New, []byte("authsvc log account tag\x00"+secret))
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:6])
}

// rehash upgrades a stored hash made with older parameters. Failure only
// logs: the user is signed in either way and the next sign-in retries.
func (d *deps) rehash(r *http.Request, u *user.User, pw string) {
	log := httpx.LogFrom(r.Context())
	hctx, hcancel := d.hashCtx(r.Context())
	hash, err := d.hasher.Hash(hctx, pw)
	hcancel()
	if err != nil {
		log.Warn("password rehash skipped", zap.Error(err))
		return
	}
	ctx, cancel := d.dbCtx(r.Context())
	defer cancel()
	replaced, err := d.users(d.db).ReplacePasswordHash(ctx, u.ID, u.PasswordHash, hash)
	if err != nil {
		log.Warn("password rehash not stored", zap.Error(err))
		return
	}
	if !replaced {
		// The password was changed or reset since this sign-in read it:
		// the newer hash stays.
		log.Info("password rehash skipped: the password changed meanwhile")
		return
	}
	u.PasswordHash = hash
	log.Info("password rehashed with current parameters")
}
