package main

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

// installClient makes testdata/client's node_modules match the committed
// package-lock.json, so the pinned better-auth is what runs.
func installClient(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("testdata", "client"))
	testenv.NPMCI(t, dir)
	return dir
}

// TestBetterAuthClient is the compatibility contract: better-auth's own
// client, pinned in testdata/client/package.json, signs up, signs in, reads
// the session and a JWT, and signs out against a real authsvc.
func TestBetterAuthClient(t *testing.T) {
	dir := installClient(t)
	in := startDefault(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AUTH_URL="+in.base, "ORIGIN=http://localhost:8080", "COOKIE_SECRET="+testSecret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstdout: %s\nstderr: %s\nauthsvc log:\n%s", err, stdout.String(), stderr.String(), in.logs.String())
	}
	var out struct {
		SignUp struct {
			UserID, Email, Token, CreatedAt string
		}
		Duplicate struct {
			Status int
			Code   string
		}
		BadSignIn struct {
			Status        int
			Code, Message string
		}
		SignIn struct {
			UserID   string
			Redirect bool
			Token    string
		}
		GetSession struct {
			UserID, Email, SessionUserID, ExpiresAt, JWTHeader string
		}
		CookieMatchesBetterCall bool
		Token                   string
		JWKS                    json.RawMessage
		SignOut                 struct{ Success bool }
		AfterSignOut            json.RawMessage
		TokenAfter              struct {
			Status int
			Code   string
		} `json:"tokenAfterSignOut"`
		RevokeSessions      struct{ Status bool }
		AfterRevokeSessions json.RawMessage
		CommonPassword      struct {
			Status int
			Code   string
		}
		Requests []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("client output %q: %v", stdout.String(), err)
	}
	t.Logf("requests: %v", out.Requests)

	uid := out.SignUp.UserID
	if uid == "" || out.SignUp.Token == "" || !msTime.MatchString(out.SignUp.CreatedAt) {
		t.Errorf("signUp = %+v", out.SignUp)
	}
	if out.Duplicate.Status != 422 || out.Duplicate.Code != "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL" {
		t.Errorf("duplicate signUp error = %+v", out.Duplicate)
	}
	if out.BadSignIn.Status != 401 || out.BadSignIn.Code != "INVALID_EMAIL_OR_PASSWORD" || out.BadSignIn.Message != "Invalid email or password" {
		t.Errorf("bad signIn error = %+v", out.BadSignIn)
	}
	if out.SignIn.UserID != uid || out.SignIn.Redirect || out.SignIn.Token == "" || out.SignIn.Token == out.SignUp.Token {
		t.Errorf("signIn = %+v", out.SignIn)
	}
	if !out.CookieMatchesBetterCall {
		t.Errorf("session cookie differs from better-call's serializeSignedCookie for the same token and secret")
	}
	gs := out.GetSession
	if gs.UserID != uid || gs.SessionUserID != uid || gs.Email != out.SignUp.Email || gs.JWTHeader == "" {
		t.Errorf("getSession = %+v", gs)
	}
	if out.SignUp.Email == "" || out.SignUp.Email != "node.client."+out.SignUp.Email[len("node.client."):] {
		t.Errorf("email not lower-cased: %q", out.SignUp.Email)
	}
	_, claims := verifyJWT(t, out.Token, out.JWKS)
	checkClaims(t, claims, uid, "http://localhost:8080", 900)
	verifyJWT(t, gs.JWTHeader, out.JWKS)
	if !out.SignOut.Success {
		t.Errorf("signOut = %+v", out.SignOut)
	}
	if string(out.AfterSignOut) != "null" {
		t.Errorf("getSession after signOut = %s, want null", out.AfterSignOut)
	}
	if out.TokenAfter.Status != 401 {
		t.Errorf("token after signOut = %+v, want 401", out.TokenAfter)
	}
	if !out.RevokeSessions.Status || string(out.AfterRevokeSessions) != "null" {
		t.Errorf("revokeSessions = %+v, then getSession = %s; want status true, then null", out.RevokeSessions, out.AfterRevokeSessions)
	}
	if out.CommonPassword.Status != 400 || out.CommonPassword.Code != "PASSWORD_COMPROMISED" {
		t.Errorf("signUp with a common password = %+v, want 400 PASSWORD_COMPROMISED", out.CommonPassword)
	}
}
