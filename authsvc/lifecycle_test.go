package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"gatehouse.dev/authsvc/internal/outbox"
	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/kit/wire"
)

// withMail starts authsvc with Redis (withRedis) and a real SMTP server
// (Mailpit) it mails through.
func withMail(t *testing.T, overrides ...string) (*instance, *testenv.MailServer, *redis.Client, string) {
	t.Helper()
	mp := testenv.Mailpit(t, devenv.MailpitOptions{})
	in, rdb, prefix := withRedis(t, testenv.RedisAddr(t), append([]string{
		"SMTP_URL", "smtp://" + mp.SMTPAddr, "MAIL_FROM", "Gatehouse <noreply@example.test>",
		"MAIL_ANSWER_FLOOR", "20ms",
	}, overrides...)...)
	return in, mp, rdb, prefix
}

var linkRE = regexp.MustCompile(`http://localhost:8080/api/auth/[^\s"<>]+`)

// mailedLink waits for the n-th mail to addr and returns the link in its
// text body, pointed at the instance (the mail names the public origin),
// after checking the HTML body carries the same link.
func mailedLink(t *testing.T, mp *testenv.MailServer, in *instance, addr string, n int) string {
	t.Helper()
	m := mp.WaitFor(t, addr, n)
	link := linkRE.FindString(m.Text)
	if link == "" {
		t.Fatalf("no link in mail %q: %s", m.Subject, m.Text)
	}
	if !strings.Contains(m.HTML, strings.ReplaceAll(link, "&", "&amp;")) {
		t.Errorf("HTML body lacks the link %s:\n%s", link, m.HTML)
	}
	return strings.Replace(link, "http://localhost:8080", in.base, 1)
}

// get requests url without following redirects.
func get(t *testing.T, u string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if tok := u.Query().Get("token"); tok != "" {
		return tok
	}
	return u.Path[strings.LastIndex(u.Path, "/")+1:]
}

func testDB(t *testing.T, in *instance) *bun.DB {
	t.Helper()
	db, err := pgdb.Open(in.env["DATABASE_URL"], pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPasswordReset: the mailed link, its redirect, a second request
// superseding the first, use, reuse, expiry, and every session (two
// browsers) ending with its JWT revoked for the proxies.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	in, mp, rdb, prefix := withMail(t)
	const email, oldPW, newPW = "reset.me@example.test", "old-password-123", "new-password-456"
	a, b := newBrowser(t, in), newBrowser(t, in)
	a.signUp(email, oldPW)
	if r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": oldPW}); r.status != 200 {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	sids := []string{sidOf(t, a), sidOf(t, b)}

	anon := newBrowser(t, in)
	ask := func(addr string) response {
		return anon.do("POST", "/api/auth/request-password-reset", map[string]any{"email": addr, "redirectTo": "http://localhost:8080/reset"})
	}
	known, unknown := ask(email), ask("nobody.here@example.test")
	if known.status != 200 || unknown.status != 200 || string(known.body) != string(unknown.body) {
		t.Fatalf("known: %d %s; unknown: %d %s; want the same 200", known.status, known.body, unknown.status, unknown.body)
	}
	if !strings.Contains(string(known.body), `"status":true`) {
		t.Errorf("body %s", known.body)
	}
	if r := anon.do("POST", "/api/auth/request-password-reset", map[string]any{"email": email, "redirectTo": "https://evil.example/steal"}); r.status != 403 || r.errCode(t) != "INVALID_REDIRECT_URL" {
		t.Errorf("foreign redirectTo: %d %s", r.status, r.body)
	}
	link1 := mailedLink(t, mp, in, email, 1)
	if r := anon.do("GET", "/api/auth/reset-password/"+tokenOf(t, link1)+"?callbackURL="+url.QueryEscape("//evil.example/steal"), nil); r.status != 403 || r.errCode(t) != "INVALID_CALLBACK_URL" {
		t.Errorf("reset link with a foreign callbackURL: %d %s", r.status, r.body)
	}
	if n := mp.Count(t, "nobody.here@example.test"); n != 0 {
		t.Errorf("%d mail(s) sent to an unknown address", n)
	}
	tok1 := tokenOf(t, link1)
	if len(tok1) != 43 {
		t.Errorf("token %q: want 256 bits in base64url (43 characters)", tok1)
	}
	if status, loc := get(t, link1); status != http.StatusFound || loc != "http://localhost:8080/reset?token="+tok1 {
		t.Errorf("reset link: %d Location %q", status, loc)
	}

	// A second request: the first link stops working.
	ask(email)
	link2 := mailedLink(t, mp, in, email, 2)
	tok2 := tokenOf(t, link2)
	if status, loc := get(t, link1); status != http.StatusFound || loc != "http://localhost:8080/reset?error=INVALID_TOKEN" {
		t.Errorf("superseded link: %d Location %q", status, loc)
	}
	if r := anon.do("POST", "/api/auth/reset-password", map[string]any{"token": tok1, "newPassword": newPW}); r.status != 400 || r.errCode(t) != "INVALID_TOKEN" {
		t.Errorf("superseded token: %d %s", r.status, r.body)
	}
	if r := anon.do("POST", "/api/auth/reset-password", map[string]any{"token": tok2, "newPassword": "short"}); r.status != 400 || r.errCode(t) != "PASSWORD_TOO_SHORT" {
		t.Errorf("short password: %d %s", r.status, r.body)
	}

	sub := subscribe(t, rdb, prefix)
	if r := anon.do("POST", "/api/auth/reset-password", map[string]any{"token": tok2, "newPassword": newPW}); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":true}` {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	got := map[string]bool{}
	for range sids {
		sid, _ := nextRevocation(t, sub)
		got[sid] = true
	}
	for _, sid := range sids {
		if !got[sid] {
			t.Errorf("session %s not revoked; revoked %v", sid, got)
		}
		if _, err := rdb.ZScore(context.Background(), wire.RevokedKey(prefix), sid).Result(); err != nil {
			t.Errorf("session %s not in the revoked set: %v", sid, err)
		}
	}
	for _, br := range []*browser{a, b} {
		if r := br.do("GET", "/api/auth/get-session", nil); !isNull(r) {
			t.Errorf("a session survived the reset: %s", r.body)
		}
	}
	if r := anon.do("POST", "/api/auth/reset-password", map[string]any{"token": tok2, "newPassword": "another-password-789"}); r.status != 400 || r.errCode(t) != "INVALID_TOKEN" {
		t.Errorf("reused token: %d %s", r.status, r.body)
	}
	if r := anon.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": oldPW}); r.status != 401 {
		t.Errorf("old password still works: %d", r.status)
	}
	if r := anon.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": newPW}); r.status != 200 {
		t.Errorf("new password: %d %s", r.status, r.body)
	}

	// Expiry: an hour-old token is refused by the link and by the form.
	ask(email)
	link3 := mailedLink(t, mp, in, email, 3)
	db := testDB(t, in)
	if _, err := db.ExecContext(context.Background(), `UPDATE mail_tokens SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if status, loc := get(t, link3); status != http.StatusFound || !strings.HasSuffix(loc, "?error=INVALID_TOKEN") {
		t.Errorf("expired link: %d Location %q", status, loc)
	}
	if r := anon.do("POST", "/api/auth/reset-password", map[string]any{"token": tokenOf(t, link3), "newPassword": "yet-another-password"}); r.status != 400 || r.errCode(t) != "INVALID_TOKEN" {
		t.Errorf("expired token: %d %s", r.status, r.body)
	}
	// Stored hashed: no row holds a clear token.
	var clear int
	db.QueryRowContext(context.Background(), `SELECT count(*) FROM mail_tokens WHERE encode(token_hash, 'escape') LIKE '%' || ? || '%'`, tokenOf(t, link3)).Scan(&clear)
	if clear != 0 {
		t.Error("a clear token is stored")
	}
}

// TestMailRefusedOrFailing: no SMTP_URL is a clear 501; an SMTP server that
// is down is a 503 and leaves no usable token behind.
func TestMailRefusedOrFailing(t *testing.T) {
	t.Parallel()
	t.Run("not configured", func(t *testing.T) {
		in := startDefault(t)
		b := newBrowser(t, in)
		b.signUp("nomail@example.test", "password-123-abc")
		r := b.do("POST", "/api/auth/request-password-reset", map[string]any{"email": "nomail@example.test"})
		if r.status != 501 || r.errCode(t) != "RESET_PASSWORD_DISABLED" {
			t.Errorf("reset without SMTP_URL: %d %s", r.status, r.body)
		}
		r = b.do("POST", "/api/auth/send-verification-email", map[string]any{"email": "nomail@example.test"})
		if r.status != 501 || r.errCode(t) != "VERIFICATION_EMAIL_NOT_ENABLED" {
			t.Errorf("verification without SMTP_URL: %d %s", r.status, r.body)
		}
	})
	t.Run("server down", func(t *testing.T) {
		in := startDefault(t, "SMTP_URL", "smtp://"+testenv.FreeAddr(t), "MAIL_FROM", "noreply@example.test",
			"SMTP_TIMEOUT", "1s", "MAIL_ANSWER_FLOOR", "0s")
		b := newBrowser(t, in)
		b.signUp("down@example.test", "password-123-abc")
		r := b.do("POST", "/api/auth/request-password-reset", map[string]any{"email": "down@example.test"})
		if r.status != 503 || r.errCode(t) != "MAIL_SEND_FAILED" || r.header.Get("Retry-After") == "" {
			t.Errorf("reset with SMTP down: %d %s", r.status, r.body)
		}
		var n int
		testDB(t, in).QueryRowContext(context.Background(), `SELECT count(*) FROM mail_tokens`).Scan(&n)
		if n != 0 {
			t.Errorf("%d token(s) kept although no mail went out", n)
		}
	})
}

// TestEmailVerificationRequired: with REQUIRE_EMAIL_VERIFICATION, sign-up
// mails a link instead of signing in, sign-in is 403 until the link is
// used, and a used link is invalid.
func TestEmailVerificationRequired(t *testing.T) {
	t.Parallel()
	in, mp, _, _ := withMail(t, "REQUIRE_EMAIL_VERIFICATION", "true")
	const email, pw = "verify.me@example.test", "verify-password-123"
	b := newBrowser(t, in)
	r := b.do("POST", "/api/auth/sign-up/email", map[string]any{"name": "V", "email": email, "password": pw, "callbackURL": "/welcome"})
	if r.status != 200 || !strings.Contains(string(r.body), `"token":null`) || b.cookie("better-auth.session_token") != "" {
		t.Fatalf("sign-up: %d %s (want token null and no session cookie)", r.status, r.body)
	}
	link := mailedLink(t, mp, in, email, 1)
	// A second sign-up with the same email looks like a new account
	// (Better Auth's generic duplicate answer), and mails nothing.
	dup := newBrowser(t, in).do("POST", "/api/auth/sign-up/email", map[string]any{"name": "V", "email": email, "password": "other-password-1"})
	var first, second struct{ User struct{ ID, Email string } }
	r.json(t, &first)
	dup.json(t, &second)
	if dup.status != 200 || !strings.Contains(string(dup.body), `"token":null`) || second.User.Email != email || second.User.ID == first.User.ID {
		t.Errorf("duplicate sign-up: %d %s", dup.status, dup.body)
	}
	if n := mp.Count(t, email); n != 1 {
		t.Errorf("%d mails after a duplicate sign-up, want 1", n)
	}
	if r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": pw}); r.status != 403 || r.errCode(t) != "EMAIL_NOT_VERIFIED" {
		t.Errorf("unverified sign-in: %d %s", r.status, r.body)
	}
	if status, loc := get(t, link); status != http.StatusFound || loc != "/welcome" {
		t.Errorf("verify link: %d Location %q", status, loc)
	}
	if status, loc := get(t, link); status != http.StatusFound || loc != "/welcome?error=INVALID_TOKEN" {
		t.Errorf("used verify link: %d Location %q", status, loc)
	}
	noCallback := in.base + "/api/auth/verify-email?token=" + tokenOf(t, link)
	if r := b.do("GET", strings.TrimPrefix(noCallback, in.base), nil); r.status != 401 || r.errCode(t) != "INVALID_TOKEN" {
		t.Errorf("used token without callbackURL: %d %s", r.status, r.body)
	}
	if r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": pw}); r.status != 200 || !strings.Contains(string(r.body), `"emailVerified":true`) {
		t.Errorf("verified sign-in: %d %s", r.status, r.body)
	}
	// Signed in and verified: another mail is refused.
	if r := b.do("POST", "/api/auth/send-verification-email", map[string]any{"email": email}); r.status != 400 || r.errCode(t) != "EMAIL_ALREADY_VERIFIED" {
		t.Errorf("send-verification when verified: %d %s", r.status, r.body)
	}
	if r := b.do("POST", "/api/auth/send-verification-email", map[string]any{"email": "other@example.test"}); r.status != 400 || r.errCode(t) != "EMAIL_MISMATCH" {
		t.Errorf("send-verification for another address: %d %s", r.status, r.body)
	}
}

// With verification required, a sign-up for a taken email answers like a
// new one in body (above) and in time: neither answers before
// MAIL_ANSWER_FLOOR, although only the new account waits for a mail (the
// taken one answered in the time of its password hash alone, which told
// anyone timing it which addresses have accounts).
func TestSignUpTimingHidesTakenEmails(t *testing.T) {
	t.Parallel()
	const floor = 400 * time.Millisecond
	in, _, _, _ := withMail(t, "REQUIRE_EMAIL_VERIFICATION", "true", "MAIL_ANSWER_FLOOR", floor.String())
	signUp := func(email string) time.Duration {
		start := time.Now()
		r := newBrowser(t, in).do("POST", "/api/auth/sign-up/email", map[string]any{"name": "T", "email": email, "password": "timing-password-1"})
		took := time.Since(start)
		if r.status != 200 || !strings.Contains(string(r.body), `"token":null`) {
			t.Fatalf("sign-up %s: %d %s", email, r.status, r.body)
		}
		return took
	}
	fresh := signUp("timing.new@example.test")
	taken := signUp("timing.new@example.test")
	if fresh < floor || taken < floor {
		t.Errorf("sign-up answered a new email in %v and a taken one in %v; want both no sooner than MAIL_ANSWER_FLOOR (%v)", fresh, taken, floor)
	}
}

// TestMailQuotaPerEmail: the third mail to one address in an hour is 429,
// for unknown addresses alike.
func TestMailQuotaPerEmail(t *testing.T) {
	t.Parallel()
	in, _, _, _ := withMail(t, "MAIL_LIMIT_PER_EMAIL", "2")
	b := newBrowser(t, in)
	for _, addr := range []string{"quota@example.test", "quota.unknown@example.test"} {
		if addr == "quota@example.test" {
			b.signUp(addr, "quota-password-123")
		}
		for i := 1; i <= 3; i++ {
			r := b.do("POST", "/api/auth/request-password-reset", map[string]any{"email": addr})
			want := 200
			if i == 3 {
				want = 429
			}
			if r.status != want {
				t.Errorf("%s request %d: %d %s, want %d", addr, i, r.status, r.body, want)
			}
			if i == 3 && (r.errCode(t) != "RATE_LIMITED" || r.header.Get("Retry-After") == "") {
				t.Errorf("429 without RATE_LIMITED and Retry-After: %v %s", r.header, r.body)
			}
		}
	}
}

// TestAccountSelfService: change-password (wrong and right, revoking the
// other sessions), update-user, list-sessions and revoke-session by the
// handle list-sessions shows.
func TestAccountSelfService(t *testing.T) {
	t.Parallel()
	in, _, rdb, prefix := withMail(t)
	const email, pw, pw2 = "self.service@example.test", "first-password-123", "second-password-456"
	a, b, c := newBrowser(t, in), newBrowser(t, in), newBrowser(t, in)
	a.signUp(email, pw)
	for _, br := range []*browser{b, c} {
		if r := br.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": pw}); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	r := a.do("GET", "/api/auth/list-sessions", nil)
	var list []struct{ ID, Token, UserID string }
	r.json(t, &list)
	if r.status != 200 || len(list) != 3 {
		t.Fatalf("list-sessions: %d %s", r.status, r.body)
	}
	// Revoke c's session by the handle list-sessions gave.
	cSID := sidOf(t, c)
	if r := a.do("POST", "/api/auth/revoke-session", map[string]any{"token": cSID}); r.status != 200 {
		t.Fatalf("revoke-session by id: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("session revoked by id survived: %s", r.body)
	}

	if r := a.do("POST", "/api/auth/change-password", map[string]any{"currentPassword": "wrong-password-1", "newPassword": pw2}); r.status != 400 || r.errCode(t) != "INVALID_PASSWORD" {
		t.Errorf("wrong current password: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/api/auth/change-password", map[string]any{"currentPassword": pw}); r.status != 400 || r.errCode(t) != "VALIDATION_ERROR" {
		t.Errorf("missing newPassword: %d %s", r.status, r.body)
	}
	if r := newBrowser(t, in).do("POST", "/api/auth/change-password", map[string]any{"currentPassword": pw, "newPassword": pw2}); r.status != 401 || r.errCode(t) != "UNAUTHORIZED" {
		t.Errorf("change-password signed out: %d %s", r.status, r.body)
	}
	bSID := sidOf(t, b)
	sub := subscribe(t, rdb, prefix)
	r = a.do("POST", "/api/auth/change-password", map[string]any{"currentPassword": pw, "newPassword": pw2, "revokeOtherSessions": true})
	var changed struct {
		Token *string
		User  struct{ Email string }
	}
	r.json(t, &changed)
	if r.status != 200 || changed.Token == nil || changed.User.Email != email {
		t.Fatalf("change-password: %d %s", r.status, r.body)
	}
	revoked := map[string]bool{}
	for i := 0; i < 2; i++ { // a's old session and b's
		sid, _ := nextRevocation(t, sub)
		revoked[sid] = true
	}
	if !revoked[bSID] {
		t.Errorf("b's session %s not revoked: %v", bSID, revoked)
	}
	if r := b.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("other session survived revokeOtherSessions: %s", r.body)
	}
	if r := a.do("GET", "/api/auth/get-session", nil); isNull(r) {
		t.Error("the caller lost its (new) session")
	}

	if r := a.do("POST", "/api/auth/update-user", map[string]any{"name": "Grace Hopper", "image": "https://img.example.test/g.png"}); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":true}` {
		t.Errorf("update-user: %d %s", r.status, r.body)
	}
	r = a.do("GET", "/api/auth/get-session", nil)
	if !strings.Contains(string(r.body), `"name":"Grace Hopper"`) || !strings.Contains(string(r.body), `"image":"https://img.example.test/g.png"`) {
		t.Errorf("get-session after update-user: %s", r.body)
	}
	if r := a.do("POST", "/api/auth/update-user", map[string]any{"image": nil}); r.status != 200 {
		t.Errorf("clearing image: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/api/auth/update-user", map[string]any{"email": "new@example.test"}); r.status != 400 || r.errCode(t) != "EMAIL_CAN_NOT_BE_UPDATED" {
		t.Errorf("update-user email: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/api/auth/update-user", map[string]any{}); r.status != 400 {
		t.Errorf("update-user with nothing: %d %s", r.status, r.body)
	}
}

// TestDeleteUser: wrong password refused; the right one deletes the user and
// sessions, revokes the JWTs and leaves user.deleted in the stream for the
// backend (now and again after the JWT lifetime).
func TestDeleteUser(t *testing.T) {
	t.Parallel()
	in, _, rdb, prefix := withMail(t)
	const email, pw = "delete.me@example.test", "delete-password-123"
	a := newBrowser(t, in)
	r := a.signUp(email, pw)
	var up struct{ User struct{ ID string } }
	r.json(t, &up)
	sid := sidOf(t, a)
	if r := a.do("POST", "/api/auth/delete-user", map[string]any{"password": "wrong-password-1"}); r.status != 400 || r.errCode(t) != "INVALID_PASSWORD" {
		t.Errorf("wrong password: %d %s", r.status, r.body)
	}
	sub := subscribe(t, rdb, prefix)
	r = a.do("POST", "/api/auth/delete-user", map[string]any{"password": pw})
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"message":"User deleted","success":true}` {
		t.Fatalf("delete-user: %d %s", r.status, r.body)
	}
	if got, _ := nextRevocation(t, sub); got != sid {
		t.Errorf("revoked %s, want %s", got, sid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := rdb.XRange(context.Background(), outbox.Stream(prefix), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 {
			if v := entries[0].Values; v["type"] != "user.deleted" || v["user_id"] != up.User.ID {
				t.Errorf("event %v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events in the stream, want 1 now", len(entries))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for metric(t, in, "authsvc_user_events_relayed_total") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("authsvc_user_events_relayed_total did not reach 1")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var later int
	testDB(t, in).QueryRowContext(context.Background(), `SELECT count(*) FROM user_events WHERE user_id = ? AND deliver_after > now()`, up.User.ID).Scan(&later)
	if later != 1 {
		t.Errorf("%d delayed announcement(s) queued, want 1", later)
	}
	if r := a.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("session survived: %s", r.body)
	}
	if r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": pw}); r.status != 401 {
		t.Errorf("deleted user signs in: %d", r.status)
	}
	if r := newBrowser(t, in).do("POST", "/api/auth/delete-user", map[string]any{"password": pw}); r.status != 401 {
		t.Errorf("delete-user signed out: %d", r.status)
	}
}
