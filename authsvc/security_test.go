package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/authsvc/internal/throttle"
	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/kit/wire"
)

// withRedis starts authsvc on a fresh database, publishing to the Redis at
// addr under a per-test prefix whose keys are deleted afterwards.
func withRedis(t *testing.T, addr string, overrides ...string) (*instance, *redis.Client, string) {
	t.Helper()
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for it := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator(); it.Next(ctx); {
			rdb.Del(ctx, it.Val())
		}
		rdb.Close()
	})
	in := startDefault(t, append([]string{"REDIS_URL", "redis://" + addr + "/0", "REDIS_PREFIX", prefix}, overrides...)...)
	return in, rdb, prefix
}

// subscribe listens on the revocation channel; the subscription is live
// when it returns.
func subscribe(t *testing.T, rdb *redis.Client, prefix string) *redis.PubSub {
	t.Helper()
	sub := rdb.Subscribe(context.Background(), wire.RevocationChannel(prefix))
	t.Cleanup(func() { sub.Close() })
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sub
}

// nextRevocation waits for one "<sid> <exp>" message.
func nextRevocation(t *testing.T, sub *redis.PubSub) (sid string, exp int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatalf("no revocation published: %v", err)
	}
	sid, e, ok := strings.Cut(msg.Payload, " ")
	exp, err = strconv.ParseInt(e, 10, 64)
	if !ok || err != nil || sid == "" {
		t.Fatalf("revocation message %q: want \"<sid> <unix seconds>\"", msg.Payload)
	}
	return sid, exp
}

// sidOf is the sid claim of the browser's current access token.
func sidOf(t *testing.T, b *browser) string {
	t.Helper()
	r := b.do("GET", "/api/auth/token", nil)
	var tok struct{ Token string }
	r.json(t, &tok)
	_, claims, _, _ := splitJWT(t, tok.Token)
	sid, _ := claims["sid"].(string)
	if r.status != 200 || sid == "" {
		t.Fatalf("token = %d %s: no sid claim", r.status, r.body)
	}
	return sid
}

// metric reads one counter from the instance's metrics listener.
func metric(t *testing.T, in *instance, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + in.env["AUTHSVC_METRICS_ADDR"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

func isNull(r response) bool { return r.status == 200 && strings.TrimSpace(string(r.body)) == "null" }

func TestSignOutPublishesRevocation(t *testing.T) {
	t.Parallel()
	in, rdb, prefix := withRedis(t, testenv.RedisAddr(t), "JWT_TTL", "10m")
	sub := subscribe(t, rdb, prefix)
	b := newBrowser(t, in)
	b.signUp("revoked@example.com", "sturdy-otter-42")
	sid := sidOf(t, b)

	before := time.Now().Unix()
	if r := b.do("POST", "/api/auth/sign-out", nil); r.status != 200 {
		t.Fatalf("sign-out = %d %s", r.status, r.body)
	}
	after := time.Now().Unix()
	gotSID, exp := nextRevocation(t, sub)
	if gotSID != sid {
		t.Errorf("published sid %q, want the JWT's sid %q", gotSID, sid)
	}
	if lo, hi := before+600+60, after+600+60; exp < lo || exp > hi {
		t.Errorf("published expiry %d, want in [%d, %d]: now + JWT_TTL + 60s", exp, lo, hi)
	}
	score, err := rdb.ZScore(context.Background(), wire.RevokedKey(prefix), sid).Result()
	if err != nil || int64(score) != exp {
		t.Errorf("ZSCORE %s %s = %v, %v; want %d", wire.RevokedKey(prefix), sid, score, err, exp)
	}
	if got := metric(t, in, "authsvc_revocations_published_total"); got != 1 {
		t.Errorf("revocations_published_total = %v, want 1", got)
	}
	// Signing out again, without a session, publishes nothing.
	b.do("POST", "/api/auth/sign-out", nil)
	if n := rdb.ZCard(context.Background(), wire.RevokedKey(prefix)).Val(); n != 1 {
		t.Errorf("set has %d members after a second sign-out, want 1", n)
	}
}

func TestRevokeSessionsEndsEverySessionOfTheUser(t *testing.T) {
	t.Parallel()
	in, rdb, prefix := withRedis(t, testenv.RedisAddr(t))
	sub := subscribe(t, rdb, prefix)
	laptop, phone, other := newBrowser(t, in), newBrowser(t, in), newBrowser(t, in)
	laptop.signUp("many@example.com", "sturdy-otter-42")
	if r := phone.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "many@example.com", "password": "sturdy-otter-42"}); r.status != 200 {
		t.Fatalf("second sign-in = %d %s", r.status, r.body)
	}
	other.signUp("bystander@example.com", "sturdy-otter-42")
	want := map[string]bool{sidOf(t, laptop): true, sidOf(t, phone): true}
	otherSID := sidOf(t, other)

	if r := newBrowser(t, in).do("POST", "/api/auth/revoke-sessions", nil); r.status != 401 || r.errCode(t) != "UNAUTHORIZED" {
		t.Errorf("revoke-sessions without a session = %d %s, want 401", r.status, r.body)
	}
	if r := laptop.do("POST", "/api/auth/revoke-sessions", nil, "Origin", "https://evil.example"); r.status != 403 || r.errCode(t) != "INVALID_ORIGIN" {
		t.Errorf("revoke-sessions from another origin = %d %s, want 403", r.status, r.body)
	}
	r := laptop.do("POST", "/api/auth/revoke-sessions", map[string]any{})
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":true}` {
		t.Fatalf("revoke-sessions = %d %s", r.status, r.body)
	}
	if c := setCookies(r.header)["better-auth.session_token"]; !strings.Contains(c, "Max-Age=0") {
		t.Errorf("revoke-sessions did not expire the caller's cookie: %q", c)
	}
	for range 2 {
		sid, _ := nextRevocation(t, sub)
		if !want[sid] {
			t.Errorf("published sid %q, want one of %v", sid, want)
		}
		delete(want, sid)
	}
	ctx := context.Background()
	if rdb.ZScore(ctx, wire.RevokedKey(prefix), otherSID).Err() != redis.Nil {
		t.Errorf("another user's session was revoked")
	}
	if r := phone.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("phone session after revoke-sessions = %d %s, want null", r.status, r.body)
	}
	if r := laptop.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("laptop session after revoke-sessions = %d %s, want null", r.status, r.body)
	}
	if r := other.do("GET", "/api/auth/get-session", nil); r.status != 200 || isNull(r) {
		t.Errorf("another user's session after revoke-sessions = %d %s, want it alive", r.status, r.body)
	}
}

func TestRevokeOneAndOtherSessions(t *testing.T) {
	t.Parallel()
	in, rdb, prefix := withRedis(t, testenv.RedisAddr(t))
	sub := subscribe(t, rdb, prefix)
	signIn := func(email string) (*browser, string) {
		b := newBrowser(t, in)
		r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": "sturdy-otter-42"})
		var body struct{ Token string }
		r.json(t, &body)
		if r.status != 200 {
			t.Fatalf("sign-in = %d %s", r.status, r.body)
		}
		return b, body.Token
	}
	a, eve := newBrowser(t, in), newBrowser(t, in)
	a.signUp("one@example.com", "sturdy-otter-42")
	eve.signUp("eve@example.com", "sturdy-otter-42")
	b, bToken := signIn("one@example.com")
	c, _ := signIn("one@example.com")
	bSID := sidOf(t, b)

	// Eve knows b's token: revoking it from her account changes nothing.
	if r := eve.do("POST", "/api/auth/revoke-session", map[string]any{"token": bToken}); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":true}` {
		t.Fatalf("revoke-session of another user's token = %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/api/auth/get-session", nil); isNull(r) {
		t.Fatalf("another user revoked b's session")
	}
	if r := eve.do("POST", "/api/auth/revoke-session", map[string]any{}); r.status != 400 || r.errCode(t) != "VALIDATION_ERROR" {
		t.Errorf("revoke-session without token = %d %s", r.status, r.body)
	}
	// The owner revokes b from a.
	if r := a.do("POST", "/api/auth/revoke-session", map[string]any{"token": bToken}); r.status != 200 {
		t.Fatalf("revoke-session = %d %s", r.status, r.body)
	}
	if sid, _ := nextRevocation(t, sub); sid != bSID {
		t.Errorf("published %q, want b's sid %q", sid, bSID)
	}
	if r := b.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("b after revoke-session = %s", r.body)
	}
	// revoke-other-sessions from a ends c, keeps a.
	cSID := sidOf(t, c)
	if r := a.do("POST", "/api/auth/revoke-other-sessions", nil); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":true}` {
		t.Fatalf("revoke-other-sessions = %d %s", r.status, r.body)
	}
	if sid, _ := nextRevocation(t, sub); sid != cSID {
		t.Errorf("published %q, want c's sid %q", sid, cSID)
	}
	if r := c.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("c after revoke-other-sessions = %s", r.body)
	}
	if r := a.do("GET", "/api/auth/get-session", nil); isNull(r) {
		t.Errorf("a (the caller) was signed out by revoke-other-sessions")
	}
	if r := eve.do("GET", "/api/auth/get-session", nil); isNull(r) {
		t.Errorf("another user was signed out by revoke-other-sessions")
	}
}

// TestSignOutWithRedisDownStillSucceeds: with Redis stopped, sign-out is
// still 200 and the session is gone; the revocation is retried in the
// background and lands once Redis is back. Sign-in fails open meanwhile.
func TestSignOutWithRedisDownStillSucceeds(t *testing.T) {
	t.Parallel()
	srv := testenv.NewRedis(t)
	in, rdb, prefix := withRedis(t, srv.Addr())
	b := newBrowser(t, in)
	b.signUp("outage@example.com", "sturdy-otter-42")
	sid := sidOf(t, b)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if r := b.do("POST", "/api/auth/sign-out", nil); r.status != 200 {
		t.Fatalf("sign-out with Redis down = %d %s", r.status, r.body)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("sign-out with Redis down took %v", d)
	}
	if r := b.do("GET", "/api/auth/get-session", nil); !isNull(r) {
		t.Errorf("session alive after sign-out with Redis down: %s", r.body)
	}
	if got := metric(t, in, "authsvc_revocations_failed_total"); got != 1 {
		t.Errorf("revocations_failed_total = %v, want 1", got)
	}
	if !strings.Contains(in.logs.String(), "session revocation not published yet") {
		t.Errorf("no warning logged for the failed revocation")
	}
	// Sign-in is not blocked by the throttle's store being down.
	if r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "outage@example.com", "password": "sturdy-otter-42"}); r.status != 200 {
		t.Errorf("sign-in with Redis down = %d %s", r.status, r.body)
	}
	if got := metric(t, in, "authsvc_signin_throttle_unavailable_total"); got < 1 {
		t.Errorf("signin_throttle_unavailable_total = %v, want at least 1", got)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queued revocation in Redis", func() bool {
		return rdb.ZScore(context.Background(), wire.RevokedKey(prefix), sid).Err() == nil
	})
	if got := metric(t, in, "authsvc_revocations_published_total"); got != 1 {
		t.Errorf("revocations_published_total after recovery = %v, want 1", got)
	}
}

// TestSignInSlowsDownPerAccount checks the delays the service decides (its
// metric and log), not wall-clock time.
func TestSignInSlowsDownPerAccount(t *testing.T) {
	t.Parallel()
	in, rdb, prefix := withRedis(t, testenv.RedisAddr(t), "LOG_LEVEL", "info",
		"SIGNIN_DELAY_BASE", "20ms", "SIGNIN_DELAY_MAX", "80ms")
	newBrowser(t, in).signUp("victim@example.com", "sturdy-otter-42")
	newBrowser(t, in).signUp("bystander@example.com", "sturdy-otter-42")
	signIn := func(email, pw string) int {
		return newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": pw}).status
	}
	throttled := func() float64 { return metric(t, in, "authsvc_signin_throttled_total") }

	for _, email := range []string{"victim@example.com", "nobody@example.com"} { // unknown counts the same
		base := throttled()
		for i := range 5 {
			if s := signIn(email, "wrong-guess-"+strconv.Itoa(i)); s != 401 {
				t.Fatalf("%s wrong password = %d", email, s)
			}
		}
		if got := throttled() - base; got != 0 {
			t.Errorf("%s: %v attempts slowed within the first 5, want 0", email, got)
		}
		signIn(email, "wrong-guess-6")
		signIn(email, "wrong-guess-7")
		if got := throttled() - base; got != 2 {
			t.Errorf("%s: %v of the 6th and 7th attempts slowed, want 2", email, got)
		}
	}
	logs := in.logs.String()
	for _, want := range []string{`"delay":0.02`, `"delay":0.04`} {
		if strings.Count(logs, want) != 2 {
			t.Errorf("log has %d sign-ins slowed by %s, want 2 (one per account)\n%s", strings.Count(logs, want), want, logs)
		}
	}
	if strings.Contains(logs, "victim@example.com") || strings.Contains(logs, "nobody@example.com") {
		t.Errorf("log contains an email")
	}

	// Another account is unaffected.
	base := throttled()
	if s := signIn("bystander@example.com", "wrong-guess"); s != 401 || throttled() != base {
		t.Errorf("another account's first failure: status %d, slowed %v", s, throttled()-base)
	}
	// The right password still works (slowed, never locked out) and resets.
	if s := signIn("victim@example.com", "sturdy-otter-42"); s != 200 {
		t.Fatalf("correct password after failures = %d", s)
	}
	if throttled() != base+1 {
		t.Errorf("the correct sign-in after 7 failures was not slowed")
	}
	if n := rdb.Exists(context.Background(), throttle.Key(prefix, "victim@example.com")).Val(); n != 0 {
		t.Errorf("failure count not reset by a successful sign-in")
	}
	base = throttled()
	for i := range 5 {
		signIn("victim@example.com", "wrong-again-"+strconv.Itoa(i))
	}
	if throttled() != base {
		t.Errorf("after the reset, the first 5 failures were slowed")
	}
}

// Checking the current password on change-password and delete-user counts
// against the account like a sign-in, and shares its count: a stolen
// session cannot guess the password any faster than a sign-in form can.
func TestCurrentPasswordChecksSlowDownPerAccount(t *testing.T) {
	t.Parallel()
	in, _, _ := withRedis(t, testenv.RedisAddr(t), "LOG_LEVEL", "info",
		"SIGNIN_DELAY_BASE", "20ms", "SIGNIN_DELAY_MAX", "80ms")
	b := newBrowser(t, in)
	b.signUp("holder@example.com", "sturdy-otter-42")
	throttled := func() float64 { return metric(t, in, "authsvc_signin_throttled_total") }
	base := throttled()
	for i := range 4 {
		r := b.do("POST", "/api/auth/change-password", map[string]any{"currentPassword": "guess-" + strconv.Itoa(i), "newPassword": "another-otter-43"})
		if r.status != 400 || r.errCode(t) != "INVALID_PASSWORD" {
			t.Fatalf("change-password with a wrong current password = %d %s", r.status, r.body)
		}
	}
	if r := b.do("POST", "/api/auth/delete-user", map[string]any{"password": "guess-4"}); r.status != 400 {
		t.Fatalf("delete-user with a wrong password = %d %s", r.status, r.body)
	}
	if got := throttled() - base; got != 0 {
		t.Errorf("%v of the first 5 wrong guesses slowed, want 0", got)
	}
	b.do("POST", "/api/auth/change-password", map[string]any{"currentPassword": "guess-5", "newPassword": "another-otter-43"})
	// The count is the sign-in's: the form is slowed too.
	newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "holder@example.com", "password": "guess-6"})
	if got := throttled() - base; got != 2 {
		t.Errorf("%v of the 6th guess (change-password) and the 7th (sign-in) slowed, want 2", got)
	}
	if r := b.do("POST", "/api/auth/change-password", map[string]any{"currentPassword": "sturdy-otter-42", "newPassword": "another-otter-43"}); r.status != 200 {
		t.Fatalf("change-password with the right current password = %d %s", r.status, r.body)
	}
}

func TestCommonPasswordRejectedAtSignUp(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	for _, pw := range []string{"password123", "Password1", "QWERTYUIOP", "iloveyou"} {
		r := newBrowser(t, in).do("POST", "/api/auth/sign-up/email", map[string]any{"name": "a", "email": "common@example.com", "password": pw})
		if r.status != 400 || r.errCode(t) != "PASSWORD_COMPROMISED" {
			t.Errorf("sign-up with %q = %d %s, want 400 PASSWORD_COMPROMISED", pw, r.status, r.body)
		}
	}
	if got := metric(t, in, "authsvc_signup_rejected_common_password_total"); got != 4 {
		t.Errorf("signup_rejected_common_password_total = %v, want 4", got)
	}
	newBrowser(t, in).signUp("common@example.com", "vT9#qL2!mZ7@wR4$")
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	in := startDefault(t)
	b := newBrowser(t, in)
	for _, tt := range []struct {
		name   string
		r      response
		status int
	}{
		{"success", b.do("GET", "/api/auth/ok", nil), 200},
		{"sign-up", b.do("POST", "/api/auth/sign-up/email", map[string]any{"name": "h", "email": "headers@example.com", "password": "sturdy-otter-42"}), 200},
		{"error", b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "headers@example.com", "password": "wrong-one!"}), 401},
		{"not found", b.do("GET", "/api/auth/nope", nil), 404},
		{"jwks", b.do("GET", "/api/auth/jwks", nil), 200},
		{"healthz", b.do("GET", "/healthz", nil), 200},
	} {
		if tt.r.status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, tt.r.status, tt.status)
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		} {
			if got := tt.r.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, v)
			}
		}
		if cc := tt.r.header.Get("Cache-Control"); tt.name != "jwks" && tt.name != "healthz" && cc != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", tt.name, cc)
		}
	}
}
