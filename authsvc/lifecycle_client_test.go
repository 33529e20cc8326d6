package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestBetterAuthClientLifecycle: better-auth's own client (pinned in
// testdata/client) drives every account-lifecycle call against authsvc,
// with mail delivered to a real SMTP server and links read from it.
func TestBetterAuthClientLifecycle(t *testing.T) {
	t.Parallel()
	dir := installClient(t)
	in, mp, _, _ := withMail(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "lifecycle.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AUTH_URL="+in.base, "ORIGIN=http://localhost:8080", "MAILPIT_API=http://"+mp.HTTPAddr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node lifecycle.mjs: %v\nstdout: %s\nstderr: %s\nauthsvc log:\n%s", err, stdout.String(), stderr.String(), in.logs.String())
	}
	type apiErr struct {
		Status int
		Code   string
	}
	var out struct {
		RequestReset, RequestResetUnknown json.RawMessage
		ResetLink                         struct {
			Status   int
			HasToken bool
		}
		ResetPassword         struct{ Status bool }
		ResetReuse            apiErr
		SessionAfterReset     struct{ A, B json.RawMessage }
		OldPasswordAfterReset apiErr
		ChangeWrong           apiErr
		Change                struct {
			HasToken bool
			Email    string
		}
		SessionBAfterChange json.RawMessage
		UpdateUser          struct{ Status bool }
		NameAfterUpdate     string
		ListSessions        int
		RevokeSession       struct{ Status bool }
		SessionBAfterRevoke json.RawMessage
		SendVerification    struct{ Status bool }
		VerifyEmail         struct{ Status bool }
		Verified            bool
		DeleteWrong         apiErr
		DeleteUser          struct {
			Success bool
			Message string
		}
		SessionAfterDelete json.RawMessage
		SignInAfterDelete  apiErr
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	check := func(what string, ok bool, got any) {
		t.Helper()
		if !ok {
			t.Errorf("%s: got %+v", what, got)
		}
	}
	check("request-password-reset answers alike for an unknown email",
		string(out.RequestReset) == string(out.RequestResetUnknown) && bytes.Contains(out.RequestReset, []byte(`"status":true`)),
		string(out.RequestReset)+" vs "+string(out.RequestResetUnknown))
	check("reset link redirects with the token", out.ResetLink.Status == 302 && out.ResetLink.HasToken, out.ResetLink)
	check("resetPassword", out.ResetPassword.Status, out.ResetPassword)
	check("reusing the token", out.ResetReuse == apiErr{400, "INVALID_TOKEN"}, out.ResetReuse)
	check("sessions end on reset", string(out.SessionAfterReset.A) == "null" && string(out.SessionAfterReset.B) == "null", out.SessionAfterReset)
	check("old password after reset", out.OldPasswordAfterReset == apiErr{401, "INVALID_EMAIL_OR_PASSWORD"}, out.OldPasswordAfterReset)
	check("changePassword with a wrong password", out.ChangeWrong == apiErr{400, "INVALID_PASSWORD"}, out.ChangeWrong)
	check("changePassword", out.Change.HasToken && out.Change.Email != "", out.Change)
	check("revokeOtherSessions ended b", string(out.SessionBAfterChange) == "null", string(out.SessionBAfterChange))
	check("updateUser", out.UpdateUser.Status && out.NameAfterUpdate == "Renamed Person", out)
	check("listSessions", out.ListSessions == 2, out.ListSessions)
	check("revokeSession with listSessions' token", out.RevokeSession.Status && string(out.SessionBAfterRevoke) == "null", string(out.SessionBAfterRevoke))
	check("sendVerificationEmail + verifyEmail", out.SendVerification.Status && out.VerifyEmail.Status && out.Verified, out)
	check("deleteUser with a wrong password", out.DeleteWrong == apiErr{400, "INVALID_PASSWORD"}, out.DeleteWrong)
	check("deleteUser", out.DeleteUser.Success && out.DeleteUser.Message == "User deleted", out.DeleteUser)
	check("session after deleteUser", string(out.SessionAfterDelete) == "null", string(out.SessionAfterDelete))
	check("sign-in after deleteUser", out.SignInAfterDelete == apiErr{401, "INVALID_EMAIL_OR_PASSWORD"}, out.SignInAfterDelete)
}
