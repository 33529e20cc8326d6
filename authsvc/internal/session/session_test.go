package session

import (
	"strings"
	"testing"
	"time"
)

func TestSignerMatchesBetterCallFormat(t *testing.T) {
	s := NewSigner("secret-secret-secret-secret-secret")
	v := s.Sign("abc_DEF-123")
	if !strings.HasPrefix(v, "abc_DEF-123.") || !strings.HasSuffix(v, "%3D") || strings.ContainsAny(v, "+/=") {
		t.Errorf("Sign = %q, want token.base64mac URL-encoded", v)
	}
	if tok, ok := s.Verify(v); !ok || tok != "abc_DEF-123" {
		t.Errorf("Verify(Sign) = %q, %v", tok, ok)
	}
	if _, ok := NewSigner("another-secret-another-secret-xx").Verify(v); ok {
		t.Error("verified with another secret")
	}
	for _, bad := range []string{"", "abc", ".abc", "abc.short%3D", v[:len(v)-4] + "A%3D"} {
		if _, ok := s.Verify(bad); ok {
			t.Errorf("Verify(%q) = ok", bad)
		}
	}
}

func TestEncodeURIComponent(t *testing.T) {
	if got := EncodeURIComponent("a+b/c=d e!~*'()-_."); got != "a%2Bb%2Fc%3Dd%20e!~*'()-_." {
		t.Errorf("EncodeURIComponent = %q", got)
	}
}

func TestTokensAndIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, id := NewToken(), NewID()
		if len(tok) != 43 || len(id) != 32 || seen[tok] || seen[id] {
			t.Fatalf("token %q id %q", tok, id)
		}
		seen[tok], seen[id] = true, true
	}
}

// TestRefreshAtMostOncePerDay: expiry slides only once the session is a
// day past its last refresh, and never for rememberMe=false sessions.
func TestRefreshAtMostOncePerDay(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	s := NewStore(nil, Options{TTL: 7 * 24 * time.Hour})
	s.now = func() time.Time { return now }
	fresh := &Session{Remember: true, ExpiresAt: now.Add(7*24*time.Hour - time.Hour)}
	stale := &Session{Remember: true, ExpiresAt: now.Add(6*24*time.Hour - time.Minute)}
	short := &Session{Remember: false, ExpiresAt: now.Add(time.Minute)}
	if s.NeedsRefresh(fresh) || !s.NeedsRefresh(stale) || s.NeedsRefresh(short) {
		t.Errorf("NeedsRefresh fresh=%v stale=%v short=%v; want false, true, false",
			s.NeedsRefresh(fresh), s.NeedsRefresh(stale), s.NeedsRefresh(short))
	}
}
