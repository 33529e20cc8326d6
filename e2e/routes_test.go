package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestRoutesFileWebSocketSignOut: the proxy binary with PROXY_ROUTES_FILE in
// front of a WebSocket server that is not Gatehouse's backend. A token from
// the real authsvc opens a tunnel; signing out through authsvc closes it
// within a second, through the same Redis revocation path every proxy
// follows.
func TestRoutesFileWebSocketSignOut(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{})
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		// The identity the proxy vouches for, then an echo of every message.
		if err := c.Write(r.Context(), websocket.MessageText, []byte("hello "+r.Header.Get("X-User-Id"))); err != nil {
			return
		}
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte(fmt.Sprintf(`
upstreams:
  ws: %s
  auth: http://%s
routes:
  - {prefix: /api/auth/, upstream: auth, auth: none, rate_limit: auth}
  - {prefix: /ws/, upstream: ws, timeout: 1h}
`, echo.URL, s.Auth.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := s.StartProxy(t, "PROXY_ROUTES_FILE="+routes)

	u := s.NewUser(t)
	u.SignUp("ws-signout@example.com", pw)
	tok := u.Token()
	ws := "ws://" + p.Addr + "/ws/chat"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, resp, err := websocket.Dial(ctx, ws, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v, want 401 before the upgrade", resp)
	}
	c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, hello, err := c.Read(ctx)
	if err != nil || !strings.HasPrefix(string(hello), "hello ") || string(hello) == "hello " {
		t.Fatalf("greeting %q, %v: want the upstream to see X-User-ID", hello, err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("echo %q, %v", msg, err)
	}

	if r := u.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
		t.Fatalf("sign-out: %s", r)
	}
	signedOut := time.Now()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			break
		}
	}
	if d := time.Since(signedOut); d > time.Second {
		t.Errorf("tunnel closed %v after sign-out, want within 1s", d)
	}
	if ctx.Err() != nil {
		t.Fatal("tunnel still open 10s after sign-out")
	}
}
