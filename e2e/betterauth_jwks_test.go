package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// betterAuth is a running examples/betterauth server: the real better-auth
// package with its jwt plugin, on its own Postgres database.
type betterAuth struct {
	*Proc
	dir string
	env []string
}

const (
	baIssuer   = "https://app.example.test"
	baAudience = "https://api.example.test"
)

func startBetterAuth(t *testing.T) *betterAuth {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "examples", "betterauth"))
	testenv.NPMCI(t, dir)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	p := &Proc{Name: "better-auth", Addr: testenv.FreeAddr(t), bin: filepath.Join(dir, "server.mjs")}
	env := []string{
		"DATABASE_URL=" + testenv.Database(t), "BETTER_AUTH_SECRET=" + hex.EncodeToString(secret),
		"BETTER_AUTH_URL=http://" + p.Addr, "JWT_ISSUER=" + baIssuer, "JWT_AUDIENCE=" + baAudience,
		"BETTER_AUTH_TELEMETRY=0",
	}
	p.env = append(env, "ADDR="+p.Addr)
	t.Cleanup(func() {
		if err := p.Stop(t); err != nil {
			t.Errorf("better-auth: exit after SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("---- better-auth logs ----\n%s", p.Logs())
		}
	})
	p.start(t)
	// The port came from FreeAddr; on a busy machine another test's server
	// can take it first. The line is printed only once our listen succeeded.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.Logs(), "better-auth listening on "+p.Addr) {
		if time.Now().After(deadline) {
			t.Fatalf("better-auth did not listen on %s:\n%s", p.Addr, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.WaitReady(t)
	return &betterAuth{Proc: p, dir: dir, env: env}
}

// signUp creates a user on Better Auth directly (as the Next.js server would)
// and returns its id and a JWT from the jwt plugin's /api/auth/token.
func (ba *betterAuth) signUp(t *testing.T, email string) (uid, token string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	base := "http://" + ba.Addr
	do := func(method, path, body string) []byte {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Origin", base)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("better-auth %s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	var up struct{ User struct{ ID string } }
	_ = json.Unmarshal(do("POST", "/api/auth/sign-up/email", fmt.Sprintf(`{"name":"x","email":%q,"password":%q}`, email, pw)), &up)
	var tok struct{ Token string }
	_ = json.Unmarshal(do("GET", "/api/auth/token", ""), &tok)
	if up.User.ID == "" || tok.Token == "" {
		t.Fatalf("better-auth sign-up gave user %q, token %q", up.User.ID, tok.Token)
	}
	return up.User.ID, tok.Token
}

// sign has the server's own key sign each payload (sign.mjs, Better Auth's
// server-only auth.api.signJWT).
func (ba *betterAuth) sign(t *testing.T, payloads ...map[string]any) []string {
	t.Helper()
	args := []string{"sign.mjs"}
	for _, p := range payloads {
		b, _ := json.Marshal(p)
		args = append(args, string(b))
	}
	cmd := exec.Command("node", args...)
	cmd.Dir = ba.dir
	cmd.Env = append(os.Environ(), ba.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	toks := strings.Fields(string(out))
	if err != nil || len(toks) != len(payloads) {
		t.Fatalf("node sign.mjs: %v (%d tokens)\n%s", err, len(toks), stderr.String())
	}
	return toks
}

// Keep Better Auth (docs/migrating.md, way 2): the real better-auth package
// issues the tokens and the proxy verifies them through Better Auth's JWKS,
// with iss and aud pinned. Its token is accepted and the backend gets its
// user id; every forged or doctored variant is 401 and reaches nothing.
func TestBetterAuthJWKSThroughProxy(t *testing.T) {
	t.Parallel()
	ba := startBetterAuth(t)
	uid, token := ba.signUp(t, "kept@example.com")
	otherID, _ := ba.signUp(t, "other@example.com")

	claims := map[string]any{}
	if b, err := b64.DecodeString(strings.Split(token, ".")[1]); err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("token payload: %v", err)
	}
	if claims["sub"] != uid || claims["iss"] != baIssuer || claims["aud"] != baAudience {
		t.Errorf("Better Auth's claims %v: want sub %s, iss %s, aud %s", claims, uid, baIssuer, baAudience)
	}
	for k := range claims {
		if k != "sub" && k != "iss" && k != "aud" && k != "iat" && k != "exp" {
			t.Errorf("Better Auth's token carries %q = %v (definePayload should keep the user row out)", k, claims[k])
		}
	}

	s := StartStack(t, Options{RecordBackend: true, ProxyEnv: []string{
		"JWKS_URL=http://" + ba.Addr + "/api/auth/jwks", "JWT_ISSUER=" + baIssuer, "JWT_AUDIENCE=" + baAudience,
	}})

	// Accepted: the backend sees Better Auth's user id, once.
	m := marker("better-auth accepted")
	if r := bearerGet(t, s.URL, "/api/v1/todos?"+m, token); r.Status != http.StatusOK {
		t.Fatalf("Better Auth's token through the proxy: %s", r)
	}
	if seen := s.Seen.Find("", m); len(seen) != 1 || strings.Join(seen[0].Header.Values("X-User-Id"), ",") != uid {
		t.Fatalf("backend saw %+v, want one request with X-User-Id %s", seen, uid)
	}
	u := s.NewUser(t)
	u.Client.Jar, u.Bearer = nil, token
	if td := u.CreateTodo("kept Better Auth"); td.UserID != uid {
		t.Errorf("todo user_id %q, want Better Auth's user id %q", td.UserID, uid)
	}

	now := time.Now().Unix()
	payload := func(kv ...any) map[string]any {
		p := map[string]any{"sub": uid, "iat": now}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i].(string)] = kv[i+1]
		}
		return p
	}
	signed := ba.sign(t, payload(), payload("iss", "https://evil.example"), payload("aud", "https://other-app.example"),
		payload("iat", now-3600, "exp", now-600))
	if r := bearerGet(t, s.URL, "/api/v1/todos", signed[0]); r.Status != http.StatusOK {
		t.Fatalf("control: a token sign.mjs made with the right claims: %s", r)
	}

	parts := strings.Split(token, ".")
	hdr := headerOf(t, token)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	tampered := map[string]any{}
	for k, v := range claims {
		tampered[k] = v
	}
	tampered["sub"] = otherID
	tp, _ := json.Marshal(tampered)
	noneHdr, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT", "kid": hdr["kid"]})
	hsHdr := map[string]any{"alg": "HS256", "typ": "JWT", "kid": hdr["kid"]}

	for _, c := range []struct{ name, token string }{
		{"alg none", b64.EncodeToString(noneHdr) + "." + parts[1] + "."},
		{"alg none, signature kept", b64.EncodeToString(noneHdr) + "." + parts[1] + "." + parts[2]},
		{"another key, same kid", jws(hdr, claims, edSigner(foreign))},
		{"HS256 keyed with the public JWK", jws(hsHdr, claims, hsSigner([]byte(ba.jwks(t))))},
		{"payload tampered (sub of another user)", parts[0] + "." + b64.EncodeToString(tp) + "." + parts[2]},
		{"signature cut", parts[0] + "." + parts[1] + "."},
		{"wrong iss (real key)", signed[1]},
		{"wrong aud (real key)", signed[2]},
		{"expired (real key)", signed[3]},
	} {
		m := marker(c.name)
		r := bearerGet(t, s.URL, "/api/v1/todos?"+m, c.token)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %s, want 401", c.name, r)
		}
		s.Seen.AssertUnseen(t, c.name, r, m)
	}
}

// jwks is Better Auth's /api/auth/jwks body.
func (ba *betterAuth) jwks(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + ba.Addr + "/api/auth/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
