package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// Better Auth's own JavaScript client (the script authsvc's tests use),
// pointed at the proxy on the stack's public origin instead of authsvc.
func TestBetterAuthClientThroughProxy(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs(filepath.Join("..", "authsvc", "testdata", "client"))
	testenv.NPMCI(t, dir)
	s := StartStack(t, Options{})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AUTH_URL="+s.URL, "ORIGIN="+s.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs through the proxy: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var out struct {
		SignUp     struct{ UserID string }
		SignIn     struct{ UserID string }
		GetSession struct{ UserID, JWTHeader string }
		Token      string
		SignOut    struct{ Success bool }
		After      json.RawMessage      `json:"afterSignOut"`
		TokenAfter struct{ Status int } `json:"tokenAfterSignOut"`
		Requests   []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("client output %q: %v", stdout.String(), err)
	}
	t.Logf("requests through the proxy: %v", out.Requests)
	uid := out.SignUp.UserID
	if uid == "" || out.SignIn.UserID != uid || out.GetSession.UserID != uid || out.GetSession.JWTHeader == "" || out.Token == "" {
		t.Errorf("client flow through the proxy: %s", stdout.String())
	}
	if !out.SignOut.Success || string(out.After) != "null" || out.TokenAfter.Status != 401 {
		t.Errorf("sign-out through the proxy: %s", stdout.String())
	}
}
