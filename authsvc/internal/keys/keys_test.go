package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

func testKey(t *testing.T, act time.Time) key {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key{kid: Thumbprint(pub), pub: pub, priv: priv, activatesAt: act}
}

// TestPublicationWindows: a pending key is published but does not sign; a
// superseded key stays published for TokenTTL+Margin, then disappears.
func TestPublicationWindows(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	old, next := testKey(t, t0), testKey(t, t0.Add(10*time.Minute))
	s := &Set{opt: Options{TokenTTL: 15 * time.Minute, Margin: 5 * time.Minute}, keys: []key{old, next}}
	for _, tt := range []struct {
		at        time.Duration
		signer    string
		published int
	}{
		{1 * time.Minute, old.kid, 2},   // rotated: new key published, old still signs
		{11 * time.Minute, next.kid, 2}, // activated: new signs, old published for its tokens
		{29 * time.Minute, next.kid, 2}, // 10m + 15m TTL + 5m margin not yet over
		{31 * time.Minute, next.kid, 1}, // old key's tokens have all expired
	} {
		s.now = func() time.Time { return t0.Add(tt.at) }
		kid, _, err := s.active()
		if err != nil || kid != tt.signer {
			t.Errorf("at +%v: signer %s (%v), want %s", tt.at, kid, err, tt.signer)
		}
		if got := len(s.JWKS()); got != tt.published {
			t.Errorf("at +%v: %d keys published, want %d", tt.at, got, tt.published)
		}
	}
	rows := []row{{KID: old.kid, ActivatesAt: old.activatesAt}, {KID: next.kid, ActivatesAt: next.activatesAt}}
	if got := expired(rows, t0.Add(29*time.Minute), 15*time.Minute, 5*time.Minute); len(got) != 0 {
		t.Errorf("pruned too early: %v", got)
	}
	if got := expired(rows, t0.Add(31*time.Minute), 15*time.Minute, 5*time.Minute); len(got) != 1 || got[0] != old.kid {
		t.Errorf("expired = %v, want [%s]", got, old.kid)
	}
}

func TestSealRoundTripAndTamper(t *testing.T) {
	s, err := newSealer("auth-secret-auth-secret-auth-secret!")
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.seal([]byte("seed"), "kid1")
	if got, err := s.open(sealed, "kid1"); err != nil || string(got) != "seed" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.open(sealed, "kid2"); err == nil {
		t.Error("opened under another kid")
	}
	other, _ := newSealer("another-secret-another-secret-xxxxx")
	if _, err := other.open(sealed, "kid1"); err == nil {
		t.Error("opened with another AUTH_SECRET")
	}
}
