package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const pw = "correct horse battery staple"

// The whole product as a client sees it: sign-up, sign-in, a JWT from
// /api/auth/token, CRUD with the bearer token, then the same with only the
// cookies authsvc set.
func TestSignUpSignInAndTodos(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{})
	u := s.NewUser(t)
	up := u.SignUp("alice@example.com", pw)
	var signedUp struct {
		Token string
		User  struct{ ID, Email string }
	}
	up.JSON(t, &signedUp)
	if signedUp.User.Email != "alice@example.com" || signedUp.User.ID == "" {
		t.Fatalf("sign-up body: %s", up.Body)
	}

	fresh := s.NewUser(t)
	if r := fresh.SignIn("alice@example.com", pw); r.Status != http.StatusOK {
		t.Fatalf("sign-in: %s", r)
	}

	// Bearer only: a client without cookies.
	bearer := s.NewUser(t)
	bearer.Client.Jar = nil
	bearer.Bearer = fresh.Token()
	crud(t, bearer, signedUp.User.ID)

	// Cookies only: the access cookie set at sign-in authenticates.
	crud(t, fresh, signedUp.User.ID)
}

func crud(t *testing.T, u *User, wantUID string) {
	t.Helper()
	td := u.CreateTodo("milk")
	if td.UserID != wantUID {
		t.Errorf("todo user_id = %q, want the token's sub %q", td.UserID, wantUID)
	}
	path := fmt.Sprintf("/api/v1/todos/%d", td.ID)
	if r := u.Do("PATCH", path, `{"completed":true}`); r.Status != http.StatusOK {
		t.Errorf("PATCH: %s", r)
	}
	found := false
	for _, x := range u.Todos() {
		found = found || (x.ID == td.ID && x.Completed)
	}
	if !found {
		t.Errorf("completed todo %d not in list", td.ID)
	}
	if r := u.Do("DELETE", path, ""); r.Status != http.StatusNoContent {
		t.Errorf("DELETE: %s", r)
	}
	if r := u.Do("GET", path, ""); r.Status != http.StatusNotFound {
		t.Errorf("GET after DELETE: %s", r)
	}
}

// Neither user can see, change or delete the other's todos through any route,
// and a token for A with a spoofed X-User-ID still acts as A.
func TestUsersAreIsolated(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{})
	a, b := s.NewUser(t), s.NewUser(t)
	a.SignUp("a@example.com", pw)
	b.SignUp("b@example.com", pw)
	at := a.CreateTodo("a's secret")
	bt := b.CreateTodo("b's")
	var bID string
	{
		r := b.Do("GET", "/api/auth/get-session", "")
		var sess struct{ User struct{ ID string } }
		r.JSON(t, &sess)
		bID = sess.User.ID
	}

	for _, tc := range []struct{ method, body string }{{"GET", ""}, {"PATCH", `{"title":"pwned"}`}, {"DELETE", ""}} {
		for _, p := range []string{"/api/v1/todos/%d", "/api/v1/todos/%d/"} {
			path := fmt.Sprintf(p, at.ID)
			if r := b.Do(tc.method, path, tc.body); r.Status != http.StatusNotFound {
				t.Errorf("b %s %s = %s, want 404", tc.method, path, r)
			}
		}
	}
	for _, x := range b.Todos() {
		if x.ID == at.ID {
			t.Errorf("b's list contains a's todo")
		}
	}
	// A's token with every spelling of a spoofed identity acts as A.
	spoofs := [][]string{
		{"X-User-ID", bID}, {"x-user-id", bID}, {"X-USER-ID", bID}, {"X_User_Id", bID},
		{"X-User-Id", bID, "X-User-Id", bID}, {"Connection", "X-User-ID", "X-User-ID", bID},
		{"X-Forwarded-User", bID}, {"X-Auth-Request-User", bID}, {"Remote-User", bID},
	}
	for _, h := range spoofs {
		r := a.Do("GET", "/api/v1/todos?limit=100", "", h...)
		var list []Todo
		r.JSON(t, &list)
		if r.Status != http.StatusOK {
			t.Errorf("spoof %v: %s", h, r)
			continue
		}
		for _, x := range list {
			if x.ID == bt.ID || x.UserID != at.UserID {
				t.Errorf("spoof %v: a saw %+v", h, x)
			}
		}
		if r := a.Do("DELETE", fmt.Sprintf("/api/v1/todos/%d", bt.ID), "", h...); r.Status != http.StatusNotFound {
			t.Errorf("spoof %v: a deleting b's todo = %s, want 404", h, r)
		}
	}
	if got := b.Todos(); len(got) != 1 || got[0].Title != "b's" {
		t.Errorf("b's todos after a's attempts: %+v", got)
	}
}

// Sign-out deletes the session: token is 401, get-session is null. The
// short-lived JWT then expires and is rejected by the proxy.
func TestSignOutAndExpiry(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{JWTTTL: "3s", ProxyEnv: []string{"JWT_LEEWAY=1s"}})
	u := s.NewUser(t)
	u.SignUp("exp@example.com", pw)
	jwt := u.Token()
	if r := u.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
		t.Fatalf("sign-out: %s", r)
	}
	if r := u.Do("GET", "/api/auth/token", ""); r.Status != http.StatusUnauthorized {
		t.Errorf("token after sign-out = %s, want 401", r)
	}
	if r := u.Do("GET", "/api/auth/get-session", ""); strings.TrimSpace(string(r.Body)) != "null" {
		t.Errorf("get-session after sign-out = %s, want null", r)
	}
	bearer := s.NewUser(t)
	bearer.Bearer = jwt
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := bearer.Do("GET", "/api/v1/todos", "")
		if r.Status == http.StatusUnauthorized {
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("expired token WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JWT still accepted 15s after issue with JWT_TTL=3s: %s", r)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Sign-in through the proxy is rate limited per client IP.
func TestSignInRateLimitedThroughProxy(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{AuthRateLimit: "3/m"})
	u := s.NewUser(t)
	var last Resp
	for i := 0; i < 5; i++ {
		last = u.SignIn("nobody@example.com", "wrong password!")
		if i < 3 && last.Status != http.StatusUnauthorized {
			t.Errorf("attempt %d = %s, want 401", i+1, last)
		}
	}
	if last.Status != http.StatusTooManyRequests || last.Code() != "RATE_LIMITED" || last.Header.Get("Retry-After") == "" {
		t.Errorf("attempt 5 = %s Retry-After=%q, want 429 RATE_LIMITED with Retry-After", last, last.Header.Get("Retry-After"))
	}
}

// With authsvc down, valid tokens keep working (cached JWKS) and auth routes
// answer 502.
func TestAuthsvcDown(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{})
	u := s.NewUser(t)
	u.SignUp("down@example.com", pw)
	u.Bearer = u.Token()
	u.CreateTodo("before")
	if err := s.Auth.Stop(t); err != nil {
		t.Fatal(err)
	}
	if got := u.Todos(); len(got) != 1 {
		t.Errorf("todos with authsvc down: %+v", got)
	}
	u.CreateTodo("during")
	r := s.NewUser(t).SignIn("down@example.com", pw)
	if r.Status != http.StatusBadGateway || r.Code() != "BAD_GATEWAY" {
		t.Errorf("sign-in with authsvc down = %s, want 502 BAD_GATEWAY", r)
	}
	s.Auth.Restart(t)
	if r := s.NewUser(t).SignIn("down@example.com", pw); r.Status != http.StatusOK {
		t.Errorf("sign-in after authsvc restart = %s", r)
	}
}
