package wire

import (
	"strings"
	"testing"
)

// A revocation message written by authsvc's side reads back the same on the
// proxy's side (both import these two functions; e2e's
// TestAttackRevokedSessions proves it between the real processes).
func TestRevocationRoundTrip(t *testing.T) {
	for _, sid := range []string{"abc", "sid with space", "a b c", strings.Repeat("x", 200)} {
		msg := FormatRevocation(sid, 1700000000)
		got, exp, err := ParseRevocation(msg)
		if err != nil || got != sid || exp != 1700000000 {
			t.Errorf("ParseRevocation(%q) = %q, %d, %v; want %q, 1700000000", msg, got, exp, err, sid)
		}
	}
	for _, bad := range []string{"", "sid", " 12", "sid x", "sid 12x", "sid 1e9"} {
		if _, _, err := ParseRevocation(bad); err == nil {
			t.Errorf("ParseRevocation(%q) accepted", bad)
		}
	}
	if RevokedKey(DefaultRedisPrefix) != "gatehouse:revoked_sids" || RevocationChannel(DefaultRedisPrefix) != "gatehouse:revocations" {
		t.Error("the default key or channel changed: deployed proxies and authsvc replicas would stop agreeing")
	}
}

func TestValidUserID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"alice", true}, {"u_1-2.3@x", true}, {strings.Repeat("a", 128), true},
		{"", false}, {strings.Repeat("a", 129), false}, {"a b", false}, {"a,b", false},
		{"a\tb", false}, {"é", false}, {"a\x7f", false},
	} {
		if got := ValidUserID(tt.id); got != tt.ok {
			t.Errorf("ValidUserID(%q) = %v, want %v", tt.id, got, tt.ok)
		}
	}
}

func TestCookieNames(t *testing.T) {
	if got := SessionCookie("better-auth", false); got != "better-auth.session_token" {
		t.Errorf("SessionCookie = %q", got)
	}
	if got := AccessCookie("app", true); got != "__Secure-app.access_token" {
		t.Errorf("AccessCookie = %q", got)
	}
	for _, tt := range []struct {
		p  string
		ok bool
	}{{"better-auth", true}, {"a.b_c-1", true}, {"", false}, {"a b", false}, {"a;b", false}, {strings.Repeat("a", 65), false}} {
		if got := ValidCookiePrefix(tt.p); got != tt.ok {
			t.Errorf("ValidCookiePrefix(%q) = %v, want %v", tt.p, got, tt.ok)
		}
	}
}

func TestLoggablePath(t *testing.T) {
	for in, want := range map[string]string{
		"/api/auth/reset-password/abcDEF123": "/api/auth/reset-password/[redacted]",
		"/api/auth/reset-password/":          "/api/auth/reset-password/",
		"/api/auth/reset-password":           "/api/auth/reset-password",
		"/api/v1/todos/7":                    "/api/v1/todos/7",
	} {
		if got := LoggablePath(in); got != want {
			t.Errorf("LoggablePath(%q) = %q, want %q", in, got, want)
		}
	}
}
