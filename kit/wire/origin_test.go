package wire

import "testing"

func TestParseOrigin(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"https://app.example.com", "https://app.example.com", true},
		{"https://app.example.com/", "https://app.example.com", true},
		{"https://app.example.com:443", "https://app.example.com", true},
		{"HTTPS://App.Example.COM:443/", "https://app.example.com", true},
		{"http://localhost:80", "http://localhost", true},
		{"http://localhost:8080", "http://localhost:8080", true},
		{"https://app.example.com:80", "https://app.example.com:80", true},
		{"http://app.example.com:443", "http://app.example.com:443", true},
		{"http://[::1]:80", "http://[::1]", true},
		{" https://app.example.com ", "https://app.example.com", true},
		{"https://app.example.com/path", "", false},
		{"https://app.example.com?x=1", "", false},
		{"https://app.example.com?", "", false},
		{"https://app.example.com#f", "", false},
		{"https://user@app.example.com", "", false},
		{"ftp://app.example.com", "", false},
		{"app.example.com", "", false},
		{"null", "", false},
		{"", "", false},
		{"https://", "", false},
		{"https:app.example.com", "", false},
	} {
		got, ok := ParseOrigin(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestOriginOf(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"https://app.example.com:443/sign-in?x=1#y", "https://app.example.com", true},
		{"http://localhost:8080/", "http://localhost:8080", true},
		{"/relative", "", false},
		{"//app.example.com/x", "", false},
		{"javascript:alert(1)", "", false},
	} {
		got, ok := OriginOf(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("OriginOf(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
