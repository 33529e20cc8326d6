package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse.dev/kit/wire/wiretest"
)

// callbackURL may only send a signed-in user to this site or a trusted
// origin; browser URL parsing must not turn a "path" into another host.
func TestTrustedRedirect(t *testing.T) {
	g := &originGuard{trusted: []string{"http://localhost:8080", "https://app.example.com"}}
	for _, tt := range []struct {
		u  string
		ok bool
	}{
		{"/dashboard", true},
		{"/todos?x=1#y", true},
		{"https://app.example.com/after", true},
		{"http://localhost:8080/", true},
		{"//evil.example", false},
		{"/\\evil.example", false},
		{"/\t/evil.example", false}, // browsers drop the tab: //evil.example
		{"/\n/evil.example", false},
		{"/\r\n/evil.example", false},
		{"/\t\\evil.example", false},
		{"/a\\b", false},
		{"https://evil.example/", false},
		{"https://app.example.com.evil.example/", false},
		{"javascript:alert(1)", false},
		{"", false},
	} {
		if got := g.trustedRedirect(tt.u); got != tt.ok {
			t.Errorf("trustedRedirect(%q) = %v, want %v", tt.u, got, tt.ok)
		}
	}
}

// TRUSTED_ORIGINS is read by the same rule as the proxy's ALLOWED_ORIGINS:
// the shared cases of kit/wire/wiretest, run here and in the proxy.
func TestTrustedOriginsReadLikeTheProxy(t *testing.T) {
	for _, tc := range wiretest.OriginCases {
		cfg, err := loadConfig(func(k string) (string, bool) {
			v, ok := map[string]string{
				"AUTH_SECRET": strings.Repeat("s", 32), "DATABASE_URL": "postgres://localhost/x",
				"TRUSTED_ORIGINS": tc.Configured,
			}[k]
			return v, ok
		})
		if err != nil {
			t.Fatalf("TRUSTED_ORIGINS=%q: %v", tc.Configured, err)
		}
		g := newOriginGuard(cfg)
		r := httptest.NewRequest("POST", "/api/auth/sign-out", nil)
		r.Header.Set("Cookie", "x=y")
		r.Header.Set("Origin", tc.Sent)
		if err := g.check(r, false); (err == nil) != tc.Match {
			t.Errorf("TRUSTED_ORIGINS=%q, Origin %q: check = %v, want match %v", tc.Configured, tc.Sent, err, tc.Match)
		}
	}
}
