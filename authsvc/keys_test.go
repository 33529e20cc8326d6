package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

func tokenFor(t testing.TB, in *instance, email string) string {
	t.Helper()
	b := newBrowser(t, in)
	r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": "sturdy-otter-42"})
	if r.status != 200 {
		t.Fatalf("sign-in on %s: %d %s", in.base, r.status, r.body)
	}
	r = b.do("GET", "/api/auth/token", nil)
	var tok struct{ Token string }
	r.json(t, &tok)
	return tok.Token
}

func kidOf(t testing.TB, token string) string {
	h, _, _, _ := splitJWT(t, token)
	s, _ := h["kid"].(string)
	return s
}

func jwksKids(t testing.TB, in *instance) []string {
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(fetchJWKS(t, in.base), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// rotate runs `authsvc keys rotate` with env, as an operator would.
func rotate(t testing.TB, env map[string]string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "rotate"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out, &out); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out.String())
	}
	return out.String()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReplicasShareKeyAndRotationKeepsOldTokensValid(t *testing.T) {
	t.Parallel()
	db := testenv.Database(t)
	envA, envB := testEnv(t, db), testEnv(t, db)
	for _, e := range []map[string]string{envA, envB} {
		e["KEY_ACTIVATION_DELAY"] = "0s"
		e["KEY_RELOAD_INTERVAL"] = "100ms"
	}
	// First start races: both replicas bootstrap the same empty database.
	var a, b *instance
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = start(t, envA) }()
	go func() { defer wg.Done(); b = start(t, envB) }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow()
	}
	if ka, kb := jwksKids(t, a), jwksKids(t, b); len(ka) != 1 || strings.Join(ka, ",") != strings.Join(kb, ",") {
		t.Fatalf("replicas publish different keys: %v vs %v", ka, kb)
	}
	newBrowser(t, a).signUp("rot@example.com", "sturdy-otter-42")
	oldA, oldB := tokenFor(t, a, "rot@example.com"), tokenFor(t, b, "rot@example.com")
	oldKid := kidOf(t, oldA)
	if kidOf(t, oldB) != oldKid {
		t.Fatalf("replicas sign with different keys: %s vs %s", oldKid, kidOf(t, oldB))
	}

	out := rotate(t, envA)
	if !strings.Contains(out, "new signing key") {
		t.Errorf("rotate output = %q", out)
	}
	for _, in := range []*instance{a, b} {
		waitFor(t, "replica to pick up the rotated key", func() bool { return len(jwksKids(t, in)) == 2 })
	}
	newA, newB := tokenFor(t, a, "rot@example.com"), tokenFor(t, b, "rot@example.com")
	if kidOf(t, newA) == oldKid || kidOf(t, newA) != kidOf(t, newB) {
		t.Fatalf("after rotation kids: old %s, A %s, B %s", oldKid, kidOf(t, newA), kidOf(t, newB))
	}
	for _, in := range []*instance{a, b} {
		jwks := fetchJWKS(t, in.base)
		for _, tok := range []string{oldA, oldB, newA, newB} {
			verifyJWT(t, tok, jwks)
		}
	}
}

func TestRotatedKeyIsPublishedBeforeItSigns(t *testing.T) {
	t.Parallel()
	in := startDefault(t, "KEY_RELOAD_INTERVAL", "100ms")
	newBrowser(t, in).signUp("delay@example.com", "sturdy-otter-42")
	before := kidOf(t, tokenFor(t, in, "delay@example.com"))
	rotate(t, in.env) // default KEY_ACTIVATION_DELAY: 10 minutes
	waitFor(t, "the new key in the JWKS", func() bool { return len(jwksKids(t, in)) == 2 })
	if got := kidOf(t, tokenFor(t, in, "delay@example.com")); got != before {
		t.Errorf("signed with %s right after rotation, want the old key %s until activation", got, before)
	}
}

func TestPrivateKeyFileOverridesStoredKey(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startDefault(t, "JWT_PRIVATE_KEY_FILE", path)
	newBrowser(t, in).signUp("file@example.com", "sturdy-otter-42")
	tok := tokenFor(t, in, "file@example.com")
	verifyJWT(t, tok, fetchJWKS(t, in.base))
	_, _, signed, sig := splitJWT(t, tok)
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), []byte(signed), sig) {
		t.Errorf("token not signed with JWT_PRIVATE_KEY_FILE's key")
	}
}
