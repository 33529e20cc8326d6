package main

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/password"
	"gatehouse.dev/authsvc/internal/session"
	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/httpx"
)

// Better Auth's limits and messages (core/error/codes).
const (
	minPasswordLen = 8
	maxPasswordLen = 128
)

var (
	errInvalidEmail  = httpx.Errorf(http.StatusBadRequest, "INVALID_EMAIL", "Invalid email")
	errPasswordShort = httpx.Errorf(http.StatusBadRequest, "PASSWORD_TOO_SHORT", "Password too short")
	errPasswordLong  = httpx.Errorf(http.StatusBadRequest, "PASSWORD_TOO_LONG", "Password too long")
	// Better Auth's haveibeenpwned plugin code and message, so its client
	// and UIs handle it; ours comes from an embedded list, not a lookup.
	errPasswordCommon = httpx.Errorf(http.StatusBadRequest, "PASSWORD_COMPROMISED",
		"The password you entered has been compromised. Please choose a different password.")
	errUserExists      = httpx.Errorf(http.StatusUnprocessableEntity, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "User already exists. Use another email.")
	errBadCredentials  = httpx.Errorf(http.StatusUnauthorized, "INVALID_EMAIL_OR_PASSWORD", "Invalid email or password")
	errInvalidCallback = httpx.Errorf(http.StatusForbidden, "INVALID_CALLBACK_URL", "Invalid callbackURL")
	errUnauthorized    = httpx.Errorf(http.StatusUnauthorized, "UNAUTHORIZED", "Unauthorized")
)

// emailRE is zod 4's z.email() pattern (what Better Auth validates with),
// minus its look-aheads, which validEmail checks by hand.
var emailRE = regexp.MustCompile(`^[A-Za-z0-9_'+\-.]*[A-Za-z0-9_+\-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$`)

func validEmail(s string) bool {
	return len(s) <= 254 && !strings.HasPrefix(s, ".") && !strings.Contains(s, "..") && emailRE.MatchString(s)
}

// passwordLen counts like JavaScript's String.length (UTF-16 code units),
// so the 8–128 limits agree with Better Auth's client-side checks.
func passwordLen(s string) int { return len(utf16.Encode([]rune(s))) }

func checkPassword(pw string) error {
	switch n := passwordLen(pw); {
	case n < minPasswordLen:
		return errPasswordShort
	case n > maxPasswordLen:
		return errPasswordLong
	}
	return nil
}

type signUpRequest struct {
	Name        *string `json:"name"`
	Email       *string `json:"email"`
	Password    *string `json:"password"`
	Image       *string `json:"image"`
	CallbackURL *string `json:"callbackURL"`
	RememberMe  *bool   `json:"rememberMe"`
}

func (q signUpRequest) valid() error {
	var missing []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"name", q.Name}, {"email", q.Email}, {"password", q.Password}} {
		if f.v == nil {
			missing = append(missing, "[body."+f.name+"] Invalid input: expected string, received undefined")
		}
	}
	if len(missing) > 0 {
		return validationError(strings.Join(missing, "; "))
	}
	if *q.Password == "" {
		return validationError("[body.password] Too small: expected string to have >=1 characters")
	}
	return nil
}

type authResponse struct {
	Redirect *bool    `json:"redirect,omitempty"`
	Token    string   `json:"token"`
	URL      string   `json:"url,omitempty"`
	User     userJSON `json:"user"`
}

// handleSignUpEmail creates an account and signs it in (Better Auth's
// autoSignIn). The password is hashed before the email is checked, so a
// taken email costs the same time as a new one; only the 422 differs.
func handleSignUpEmail(d *deps, guard *originGuard) http.Handler {
	return counted(d.metrics.signUps, func(w http.ResponseWriter, r *http.Request) (string, error) {
		return signUp(w, r, d, guard)
	})
}

func signUp(w http.ResponseWriter, r *http.Request, d *deps, guard *originGuard) (outcome string, err error) {
	start := time.Now()
	q, err := decode[signUpRequest](w, r, false)
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
	if err := checkPassword(*q.Password); err != nil {
		return "invalid", err
	}
	if password.Common(*q.Password) {
		d.metrics.signUpCommon.Inc()
		return "common_password", errPasswordCommon
	}
	if q.CallbackURL != nil && *q.CallbackURL != "" && !guard.trustedRedirect(*q.CallbackURL) {
		return "invalid", errInvalidCallback
	}
	hctx, hcancel := d.hashCtx(r.Context())
	hash, err := d.hasher.Hash(hctx, *q.Password)
	hcancel()
	if err != nil {
		return "error", busy(err)
	}
	remember := q.RememberMe == nil || *q.RememberMe
	u := &user.User{ID: session.NewID(), Name: *q.Name, Email: email, Image: q.Image, PasswordHash: hash}
	var sess *session.Session
	var token string
	ctx, cancel := d.dbCtx(r.Context())
	defer cancel()
	err = d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := d.users(tx).Create(ctx, u); err != nil {
			return err
		}
		if d.cfg.RequireEmailVerification {
			return nil // no session until the address is verified
		}
		var err error
		sess, token, err = d.sessions(tx).Create(ctx, session.New{
			UserID: u.ID, Remember: remember, IPAddress: clientIP(r), UserAgent: r.UserAgent(),
		})
		return err
	})
	if errors.Is(err, user.ErrEmailTaken) && d.cfg.RequireEmailVerification {
		// Better Auth's generic duplicate answer: with verification
		// required, a taken email looks exactly like a new account (a
		// made-up user, no token), so sign-up cannot test which exist.
		// Nor can its timing: a new account's answer waits for its mail,
		// so both answer no sooner than MAIL_ANSWER_FLOOR.
		now := time.Now().UTC().Truncate(time.Millisecond)
		fake := &user.User{ID: session.NewID(), Name: u.Name, Email: email, Image: u.Image, CreatedAt: now, UpdatedAt: now}
		d.answerFloor(r.Context(), start)
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"token": nil, "user": userView(fake)})
		return "exists", nil
	}
	if errors.Is(err, user.ErrEmailTaken) {
		return "exists", errUserExists
	}
	if err != nil {
		return "error", err
	}
	httpx.AddLogFields(r.Context(), zap.String("user_id", u.ID))
	if d.cfg.RequireEmailVerification {
		// Better Auth's answer without autoSignIn: no token, and the
		// verification mail (sendOnSignUp). A failed mail does not undo
		// the account: send-verification-email sends another.
		callback := "/"
		if q.CallbackURL != nil && *q.CallbackURL != "" {
			callback = *q.CallbackURL
		}
		if err := d.mailVerification(r, u, callback); err != nil {
			httpx.LogFrom(r.Context()).Warn("verification mail at sign-up not sent", zap.Error(err))
		}
		d.answerFloor(r.Context(), start)
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"token": nil, "user": userView(u)})
		return "created_unverified", nil
	}
	if err := d.startSession(w, u, sess, token, remember); err != nil {
		return "error", err
	}
	httpx.WriteJSON(w, http.StatusOK, authResponse{Token: token, User: userView(u)})
	return "created", nil
}

// startSession sets the session cookie and the access-token cookie.
func (d *deps) startSession(w http.ResponseWriter, u *user.User, s *session.Session, token string, remember bool) error {
	jwt, err := d.issueJWT(u, s)
	if err != nil {
		return err
	}
	d.cookies.setSession(w, token, remember)
	d.cookies.setAccess(w, jwt)
	return nil
}

// busy turns a hashing-queue timeout into a 503 the client may retry.
func busy(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
			Message: "Too many sign-ins at once; try again shortly.", RetryAfter: 1}
	}
	return err
}
