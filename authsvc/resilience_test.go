package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/authsvc/internal/user"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

// TestDatabaseDownAnswers503Quickly: with Postgres stopped, requests that
// need it answer 503 UNAVAILABLE within the DB deadline instead of hanging,
// /readyz fails, and the service recovers when Postgres is back.
func TestDatabaseDownAnswers503Quickly(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase("authsvc"); err != nil {
		t.Fatal(err)
	}
	in := startDefault(t, "DATABASE_URL", pg.URL("authsvc"), "DB_TIMEOUT", "1s")
	b := newBrowser(t, in)
	b.signUp("down@example.com", "sturdy-otter-42")
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/auth/get-session"},
		{"POST", "/api/auth/sign-in/email"},
		{"GET", "/readyz"},
	} {
		var body any
		if tt.method == "POST" {
			body = map[string]any{"email": "down@example.com", "password": "sturdy-otter-42"}
		}
		began := time.Now()
		r := b.do(tt.method, tt.path, body)
		if r.status != http.StatusServiceUnavailable || r.errCode(t) != "UNAVAILABLE" {
			t.Errorf("%s %s with Postgres down = %d %s, want 503 UNAVAILABLE", tt.method, tt.path, r.status, r.body)
		}
		if d := time.Since(began); d > 8*time.Second {
			t.Errorf("%s %s took %v with Postgres down", tt.method, tt.path, d)
		}
	}
	// JWKS is served from memory: the proxy keeps verifying during an outage.
	if r := b.do("GET", "/api/auth/jwks", nil); r.status != 200 {
		t.Errorf("jwks with Postgres down = %d", r.status)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", func() bool { return b.do("GET", "/api/auth/get-session", nil).status == 200 })
}

// TestSignInRehashesWithNewParameters: a hash made with older parameters is
// replaced on the next successful sign-in.
func TestSignInRehashesWithNewParameters(t *testing.T) {
	t.Parallel()
	db := testenv.Database(t)
	env := testEnv(t, db)
	old := start(t, env)
	newBrowser(t, old).signUp("upgrade@example.com", "sturdy-otter-42")

	env2 := testEnv(t, db)
	env2["PASSWORD_HASH_MEMORY_KIB"] = "2048"
	cur := start(t, env2)
	r := newBrowser(t, cur).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "upgrade@example.com", "password": "sturdy-otter-42"})
	if r.status != 200 {
		t.Fatalf("sign-in = %d %s", r.status, r.body)
	}
	bdb, err := pgdb.Open(db, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var hash string
	if err := bdb.NewRaw("SELECT password_hash FROM users WHERE email = ?", "upgrade@example.com").Scan(context.Background(), &hash); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hash, "$m=2048,t=1,p=1$") {
		t.Errorf("hash after sign-in = %q, want it rehashed with m=2048", hash)
	}
	// And the old password still works with the new hash.
	if r := newBrowser(t, cur).do("POST", "/api/auth/sign-in/email", map[string]any{"email": "upgrade@example.com", "password": "sturdy-otter-42"}); r.status != 200 {
		t.Errorf("sign-in after rehash = %d", r.status)
	}
}

// A sign-in's rehash must not undo a password change that landed between
// its read of the hash and its write: the write is conditional on the hash
// it read (user.Store.ReplacePasswordHash).
func TestRehashNeverOverwritesANewerHash(t *testing.T) {
	t.Parallel()
	db := testenv.Database(t)
	in := start(t, testEnv(t, db))
	newBrowser(t, in).signUp("race@example.com", "sturdy-otter-42")
	bdb, err := pgdb.Open(db, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	ctx := context.Background()
	var id, read string
	if err := bdb.NewRaw("SELECT id, password_hash FROM users WHERE email = ?", "race@example.com").Scan(ctx, &id, &read); err != nil {
		t.Fatal(err)
	}
	users := user.NewStore(bdb)
	// A password change lands after the sign-in read `read`.
	if err := users.SetPasswordHash(ctx, id, "$argon2id$changed"); err != nil {
		t.Fatal(err)
	}
	if ok, err := users.ReplacePasswordHash(ctx, id, read, "$argon2id$rehash-of-old-password"); err != nil || ok {
		t.Fatalf("rehash over a changed password: replaced %v, err %v; want false", ok, err)
	}
	var now string
	if err := bdb.NewRaw("SELECT password_hash FROM users WHERE id = ?", id).Scan(ctx, &now); err != nil {
		t.Fatal(err)
	}
	if now != "$argon2id$changed" {
		t.Fatalf("hash = %q, want the changed one kept", now)
	}
	if ok, err := users.ReplacePasswordHash(ctx, id, now, "$argon2id$upgraded"); err != nil || !ok {
		t.Fatalf("rehash over the hash it read: replaced %v, err %v; want true", ok, err)
	}
}

// TestLogsNeverCarrySecrets: after a full flow at debug level, the log has
// no password, session token, cookie value, JWT or email, also on the
// Redis paths (per-account slow-down, revocation).
func TestLogsNeverCarrySecrets(t *testing.T) {
	t.Parallel()
	in, _, _ := withRedis(t, testenv.RedisAddr(t), "LOG_LEVEL", "debug", "SIGNIN_FREE_FAILURES", "1", "SIGNIN_DELAY_BASE", "1ms")
	b := newBrowser(t, in)
	r := b.signUp("logs@example.com", "s3cret-password")
	var su struct{ Token string }
	r.json(t, &su)
	b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "logs@example.com", "password": "wrong-password"})
	b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "logs@example.com", "password": "wrong-password"})
	r = b.do("GET", "/api/auth/token", nil)
	var tok struct{ Token string }
	r.json(t, &tok)
	b.do("POST", "/api/auth/sign-out", nil)
	logs := in.logs.String()
	if !strings.Contains(logs, "sign-in slowed") {
		t.Errorf("the slowed sign-in was not logged, so this test does not cover it")
	}
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("no access log lines captured:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"password": "s3cret-password", "wrong password": "wrong-password", "session token": su.Token,
		"JWT": tok.Token, "AUTH_SECRET": testSecret, "email": "logs@example.com",
	} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("log contains the %s", name)
		}
	}
}
