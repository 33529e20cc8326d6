package main

import "testing"

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
