// Package wiretest holds cases that both sides of a wire rule are tested
// against, so a service test proves it reads the rule as the other does.
package wiretest

// OriginCase is a configured trusted origin and an Origin header a browser
// sends; Match says whether the request comes from that origin.
type OriginCase struct {
	Configured, Sent string
	Match            bool
}

// OriginCases is run against the proxy's ALLOWED_ORIGINS and authsvc's
// TRUSTED_ORIGINS (issue 12: "https://app.example.com:443" matched at one
// service and never at the other).
var OriginCases = []OriginCase{
	{"https://app.example.com", "https://app.example.com", true},
	{"https://app.example.com:443", "https://app.example.com", true},
	{"https://app.example.com", "https://app.example.com:443", true},
	{"https://App.Example.com/", "https://app.example.com", true},
	{"http://app.example.com:80", "http://app.example.com", true},
	{"http://app.example.com:8080", "http://app.example.com:8080", true},
	{"https://app.example.com", "http://app.example.com", false},
	{"https://app.example.com:8443", "https://app.example.com", false},
	{"https://app.example.com", "https://app.example.com.evil.example", false},
	{"https://app.example.com", "https://evil.example", false},
	{"https://app.example.com", "null", false},
}
