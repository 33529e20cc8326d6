package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// TestImportBetterAuth: a database made by the real better-auth package
// (its migrations, its sign-up) is imported; users sign in with their old
// passwords, whose scrypt hashes are then replaced by argon2id; a second
// run changes nothing; an email already taken here is refused, not
// overwritten.
func TestImportBetterAuth(t *testing.T) {
	t.Parallel()
	dir := installClient(t)
	baURL := testenv.Database(t)
	type seedUser struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
		Verified bool   `json:"verified"`
	}
	seed := []seedUser{
		{"ada@example.com", "ada-old-password-1", "Ada", true},
		{"Bob.Mixed@Example.com", "bob-old-password-2", "Bob", false},
		{"taken@example.com", "carol-old-password", "Carol", false},
	}
	js, _ := json.Marshal(seed)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "seed-better-auth.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BA_DATABASE_URL="+baURL, "BA_USERS="+string(js))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node seed-better-auth.mjs: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var created []struct{ ID, Email string }
	if err := json.Unmarshal(stdout.Bytes(), &created); err != nil {
		t.Fatalf("seed output %q: %v", stdout.String(), err)
	}

	in := startDefault(t)
	// taken@example.com already has an account here: it must survive.
	b := newBrowser(t, in)
	b.signUp("taken@example.com", "gatehouse-password-1")

	importRun := func() (string, error) {
		var out bytes.Buffer
		env := func(k string) (string, bool) { v, ok := in.env[k]; return v, ok }
		err := run(context.Background(), []string{"import-better-auth", "--from", baURL}, env, &out, &out)
		return out.String(), err
	}
	out, err := importRun()
	if err == nil || !strings.Contains(out, "imported 3 user(s)") || !strings.Contains(out, "1 refused") {
		t.Fatalf("first import: err=%v\n%s", err, out)
	}
	out, err = importRun()
	if err == nil || !strings.Contains(out, "imported 0 user(s)") || !strings.Contains(out, "3 already here") {
		t.Fatalf("second import: err=%v\n%s", err, out)
	}

	db := testDB(t, in)
	for _, s := range seed[:2] {
		var wantID string
		for _, c := range created {
			if strings.EqualFold(c.Email, s.Email) {
				wantID = c.ID
			}
		}
		var stored string
		db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, wantID).Scan(&stored)
		if !strings.HasPrefix(stored, "$better-auth-scrypt$") {
			t.Errorf("%s: stored hash %q, want the imported scrypt hash", s.Email, stored)
		}
		r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": s.Email, "password": s.Password})
		var got struct {
			User struct {
				ID, Name, Email string
				EmailVerified   bool
			}
		}
		r.json(t, &got)
		if r.status != 200 || got.User.ID != wantID || got.User.Name != s.Name || got.User.Email != strings.ToLower(s.Email) || got.User.EmailVerified != s.Verified {
			t.Errorf("%s signs in with the old password: %d %s (want id %s)", s.Email, r.status, r.body, wantID)
		}
		db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, wantID).Scan(&stored)
		if !strings.HasPrefix(stored, "$argon2id$") {
			t.Errorf("%s: hash after sign-in %q, want argon2id", s.Email, stored)
		}
		if r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": s.Email, "password": s.Password}); r.status != 200 {
			t.Errorf("%s: second sign-in (argon2id now): %d", s.Email, r.status)
		}
		if r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": s.Email, "password": "wrong-password-x"}); r.status != 401 {
			t.Errorf("%s: wrong password: %d", s.Email, r.status)
		}
	}
	// The existing account kept its own password.
	if r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "taken@example.com", "password": "gatehouse-password-1"}); r.status != 200 {
		t.Errorf("existing account overwritten: %d %s", r.status, r.body)
	}
	// The social-only user came over without a password: sign-in fails
	// like a wrong password, and no error leaks.
	if r := newBrowser(t, in).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "social.only@example.com", "password": "anything-at-all"}); r.status != 401 || r.errCode(t) != "INVALID_EMAIL_OR_PASSWORD" {
		t.Errorf("social-only user: %d %s", r.status, r.body)
	}
}
