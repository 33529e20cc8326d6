package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gatehouse.dev/proxy/internal/token/tokentest"
)

// wsEcho makes the backend a WebSocket echo server.
func wsEcho(e *echo) {
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		// The origin rule is the proxy's, under test; behind it the
		// upstream sees its own Host, so its own same-origin check is off.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
}

func wsDial(t *testing.T, h *harness, path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.srv.URL, "http")+path, &websocket.DialOptions{HTTPHeader: hdr})
}

func wsEchoOnce(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

// wsClosedAt blocks until the tunnel ends and returns when that was.
func wsClosedAt(t *testing.T, c *websocket.Conn, limit time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("tunnel still open after %v", limit)
			}
			return time.Now()
		}
	}
}

func TestWebSocketThroughProxy(t *testing.T) {
	t.Parallel() // seconds of waiting for a token to expire, not CPU
	h := newHarness(t, harnessOpt{routes: routesYAML(""), env: map[string]string{"JWT_LEEWAY": "1s"}})
	wsEcho(h.backend)

	t.Run("no token is 401 before any upgrade", func(t *testing.T) {
		n := h.backend.count()
		_, resp, err := wsDial(t, h, "/api/ws", nil)
		if err == nil {
			t.Fatal("upgraded without a token")
		}
		if resp == nil || resp.StatusCode != 401 {
			t.Fatalf("response %v, want 401", resp)
		}
		if h.backend.count() != n {
			t.Error("the upgrade request reached the upstream")
		}
	})

	t.Run("valid token echoes", func(t *testing.T) {
		c, _, err := wsDial(t, h, "/api/ws", bearer(h.token("EdDSA", "u-ws")))
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		wsEchoOnce(t, c, "hello")
		wsEchoOnce(t, c, "again")
		if u := h.backend.last(t).Header.Get("X-User-Id"); u != "u-ws" {
			t.Errorf("upstream X-User-ID = %q", u)
		}
	})

	// A handshake is a GET carrying the user's cookies: from a foreign
	// origin it is refused like an unsafe request, before any upgrade.
	t.Run("cookie upgrade from a foreign origin is 403", func(t *testing.T) {
		tok := h.token("EdDSA", "u-ws-cookie")
		n := h.backend.count()
		_, resp, err := wsDial(t, h, "/api/ws", http.Header{"Cookie": {accessCookie + "=" + tok}, "Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("foreign-origin cookie upgrade: err %v, response %v; want 403", err, resp)
		}
		if h.backend.count() != n {
			t.Error("the upgrade request reached the upstream")
		}
		c, _, err := wsDial(t, h, "/api/ws", http.Header{"Cookie": {accessCookie + "=" + tok}, "Origin": {h.srv.URL}})
		if err != nil {
			t.Fatalf("same-origin cookie upgrade: %v", err)
		}
		defer c.CloseNow()
		wsEchoOnce(t, c, "same origin")
	})

	t.Run("closed when the token expires plus leeway", func(t *testing.T) {
		claims := tokentest.Claims("u-exp")
		exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second) // a whole second, 2-3 s away
		claims["exp"] = exp.Unix()
		c, _, err := wsDial(t, h, "/api/ws", bearer(h.keys["EdDSA"].Sign(t, claims, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		wsEchoOnce(t, c, "before expiry")
		deadline := exp.Add(time.Second) // JWT_LEEWAY
		closed := wsClosedAt(t, c, 10*time.Second)
		if d := closed.Sub(deadline); d < -100*time.Millisecond || d > time.Second {
			t.Errorf("tunnel closed %v after exp+leeway, want within [0, 1s]", d)
		}
	})

	t.Run("closed when the session is revoked", func(t *testing.T) {
		c, _, err := wsDial(t, h, "/api/ws", bearer(h.tokenWithSID("HS256", "u-rev", "sid-ws")))
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		wsEchoOnce(t, c, "before sign-out")
		signedOut := time.Now()
		h.revoke("sid-ws", time.Now().Add(time.Hour))
		closed := wsClosedAt(t, c, 10*time.Second)
		if d := closed.Sub(signedOut); d > time.Second {
			t.Errorf("tunnel closed %v after sign-out, want within 1s", d)
		}
		// And a new tunnel with that token is refused before upgrading.
		if _, resp, err := wsDial(t, h, "/api/ws", bearer(h.tokenWithSID("HS256", "u-rev", "sid-ws"))); err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("revoked token upgraded again (resp %v)", resp)
		}
	})
}
