package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// mailStack is a stack whose authsvc mails through a real SMTP server
// (Mailpit) and whose backend consumes user events from the stack's Redis.
func mailStack(t *testing.T) (*Stack, *testenv.MailServer) {
	t.Helper()
	mp := testenv.Mailpit(t, devenv.MailpitOptions{})
	rd := testenv.NewRedis(t)
	s := StartStack(t, Options{
		RecordBackend: true, SharedRedisURL: rd.URL(),
		AuthEnv: []string{"SMTP_URL=smtp://" + mp.SMTPAddr, "MAIL_FROM=Gatehouse <noreply@example.test>",
			"MAIL_ANSWER_FLOOR=20ms"},
		BackendEnv: []string{"REDIS_URL=" + rd.URL()},
	})
	return s, mp
}

// TestPasswordResetEndsSessionsAtTheEdge: signed in on two browsers, the
// user resets the password through the link in the delivered mail; both
// browsers' JWTs are refused by the proxy within a second.
func TestPasswordResetEndsSessionsAtTheEdge(t *testing.T) {
	t.Parallel()
	s, mp := mailStack(t)
	const email = "reset.edge@example.com"
	a, b := s.NewUser(t), s.NewUser(t)
	a.SignUp(email, pw)
	if r := b.SignIn(email, pw); r.Status != http.StatusOK {
		t.Fatalf("second browser: %s", r)
	}
	ta, tb := a.Token(), b.Token()
	proxies := []string{s.URL}
	mustAccept(t, proxies, ta, "browser a before reset")
	mustAccept(t, proxies, tb, "browser b before reset")

	anon := s.NewUser(t)
	if r := anon.Do("POST", "/api/auth/request-password-reset", fmt.Sprintf(`{"email":%q,"redirectTo":%q}`, email, s.URL+"/reset")); r.Status != http.StatusOK {
		t.Fatalf("request-password-reset: %s", r)
	}
	m := mp.WaitFor(t, email, 1)
	link := regexp.MustCompile(regexp.QuoteMeta(s.URL) + `/api/auth/reset-password/\S+`).FindString(m.Text)
	if link == "" {
		t.Fatalf("no reset link through the proxy in %q", m.Text)
	}
	// The link, through the proxy, redirects to the form with the token.
	r := anon.Do("GET", link[len(s.URL):], "")
	loc, _ := url.Parse(r.Header.Get("Location"))
	token := loc.Query().Get("token")
	if r.Status != http.StatusFound || token == "" {
		t.Fatalf("reset link: %s Location %q", r, r.Header.Get("Location"))
	}
	if r := anon.Do("POST", "/api/auth/reset-password", fmt.Sprintf(`{"token":%q,"newPassword":"brand-new-password-1"}`, token)); r.Status != http.StatusOK {
		t.Fatalf("reset-password: %s", r)
	}
	mustRefuseWithin(t, s, proxies, time.Second, "both browsers after a password reset", ta, tb)
	if r := s.NewUser(t).SignIn(email, "brand-new-password-1"); r.Status != http.StatusOK {
		t.Errorf("sign-in with the new password: %s", r)
	}
}

// TestDeleteUserWhileBackendDown: the user deletes the account while the
// backend is down; the JWT is refused at once, and when the backend is
// back it removes every todo of the user — and only theirs.
func TestDeleteUserWhileBackendDown(t *testing.T) {
	t.Parallel()
	s, _ := mailStack(t)
	gone, stays := s.NewUser(t), s.NewUser(t)
	gone.SignUp("delete.edge@example.com", pw)
	stays.SignUp("stays.edge@example.com", pw)
	uid := gone.userID()
	gone.CreateTodo("one")
	gone.CreateTodo("two")
	stays.CreateTodo("mine")
	tok := gone.Token()

	if err := s.Backend.Stop(t); err != nil {
		t.Fatal(err)
	}
	if r := gone.Do("POST", "/api/auth/delete-user", fmt.Sprintf(`{"password":%q}`, pw)); r.Status != http.StatusOK {
		t.Fatalf("delete-user: %s", r)
	}
	mustRefuseWithin(t, s, []string{s.URL}, time.Second, "deleted user's token", tok)
	s.Backend.Restart(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.BackendDBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, ok := pollUntil(20*time.Second, 100*time.Millisecond, func() bool {
		var n int
		return conn.QueryRow(ctx, `SELECT count(*) FROM todos WHERE user_id = $1`, uid).Scan(&n) == nil && n == 0
	}); !ok {
		t.Fatalf("the deleted user's todos are still in the backend's database\n%s", s.Backend.Logs())
	}
	if n := len(stays.Todos()); n != 1 {
		t.Errorf("the other user has %d todos, want 1", n)
	}
}

// TestBetterAuthClientLifecycleThroughProxy: better-auth's own client
// (authsvc/testdata/client/lifecycle.mjs) runs every account-lifecycle
// call through the proxy on the stack's public origin, reading the links
// from the delivered mail.
func TestBetterAuthClientLifecycleThroughProxy(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs(filepath.Join("..", "authsvc", "testdata", "client"))
	testenv.NPMCI(t, dir)
	s, mp := mailStack(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "lifecycle.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AUTH_URL="+s.URL, "ORIGIN="+s.URL, "MAILPIT_API=http://"+mp.HTTPAddr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node lifecycle.mjs through the proxy: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var out struct {
		ResetReuse, ChangeWrong, DeleteWrong, SignInAfterDelete struct{ Code string }
		SessionAfterReset                                       struct{ A, B json.RawMessage }
		Verified                                                bool
		ListSessions                                            int
		DeleteUser                                              struct{ Success bool }
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if out.ResetReuse.Code != "INVALID_TOKEN" || out.ChangeWrong.Code != "INVALID_PASSWORD" || out.DeleteWrong.Code != "INVALID_PASSWORD" ||
		string(out.SessionAfterReset.A) != "null" || string(out.SessionAfterReset.B) != "null" ||
		!out.Verified || out.ListSessions != 2 || !out.DeleteUser.Success || out.SignInAfterDelete.Code != "INVALID_EMAIL_OR_PASSWORD" {
		t.Errorf("lifecycle through the proxy: %s", stdout.String())
	}
}
