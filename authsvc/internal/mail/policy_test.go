package mail

import (
	"testing"

	gomail "github.com/wneessen/go-mail"
)

// Reset links are credentials: STARTTLS is required unless the server is on
// this host without credentials, or the URL asks for opportunistic TLS.
func TestSTARTTLSPolicy(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want gomail.TLSPolicy
	}{
		{"smtp://mail.example.com", gomail.TLSMandatory},
		{"smtp://10.0.0.5:25", gomail.TLSMandatory},
		{"smtp://u:p@mail.example.com", gomail.TLSMandatory},
		{"smtp://127.0.0.1:1025", gomail.TLSOpportunistic},
		{"smtp://localhost:1025", gomail.TLSOpportunistic},
		{"smtp://[::1]:1025", gomail.TLSOpportunistic},
		{"smtp://u:p@127.0.0.1:1025", gomail.TLSMandatory},
		{"smtp://mail.example.com?starttls=opportunistic", gomail.TLSOpportunistic},
		{"smtp://127.0.0.1:1025?starttls=required", gomail.TLSMandatory},
	} {
		s, err := parseURL(tt.url)
		if err != nil {
			t.Fatalf("parseURL(%q): %v", tt.url, err)
		}
		if s.policy != tt.want {
			t.Errorf("parseURL(%q).policy = %v, want %v", tt.url, s.policy, tt.want)
		}
	}
}
