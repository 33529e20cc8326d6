package headers_test

import (
	"net/http"
	"reflect"
	"testing"

	"gatehouse.dev/proxy/internal/headers"
)

func TestStripInbound(t *testing.T) {
	h := http.Header{}
	hostile := []string{
		"X-User-Id", "x-user-id", "X-USER-ID", "x-UsEr-Id", "X_User_Id", "x_user_id", "X-User_Id",
		"X-User-Email", "X-User-Roles", "X-Auth-Request-User", "x-auth-token", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Uri", "x-forwarded-prefix", "Forwarded",
		"X-Real-IP", "X-Real-Ip", "X-Remote-User", "Remote-User", "remote_user", "X-Request-Id",
		"X-Original-URL", "True-Client-IP", " X-User-Id",
	}
	for _, k := range hostile {
		h[k] = []string{"victim", "victim2"} // raw keys: no canonicalisation
	}
	keep := []string{"Accept", "Content-Type", "X-Custom", "X-Username-Hint", "Cookie", "Authorization"}
	for _, k := range keep {
		h[k] = []string{"v"}
	}
	headers.StripInbound(h)
	for _, k := range hostile {
		if _, ok := h[k]; ok {
			t.Errorf("%q survived", k)
		}
	}
	for _, k := range keep {
		if _, ok := h[k]; !ok {
			t.Errorf("%q was removed", k)
		}
	}
}

func TestRemoveCookies(t *testing.T) {
	names := []string{"better-auth.access_token", "__Secure-better-auth.access_token"}
	for _, tt := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"only access cookie", http.Header{"Cookie": {"better-auth.access_token=abc"}}, http.Header{}},
		{"keeps others verbatim", http.Header{"Cookie": {"a=1; better-auth.access_token=abc; b=\"x y\""}},
			http.Header{"Cookie": {"a=1; b=\"x y\""}}},
		{"several lines, any case key", http.Header{"cookie": {"better-auth.access_token=abc"}, "Cookie": {"theme=dark; __Secure-better-auth.access_token=z"}},
			http.Header{"Cookie": {"theme=dark"}}},
		{"session cookie kept", http.Header{"Cookie": {"better-auth.session_token=s; better-auth.access_token=t"}},
			http.Header{"Cookie": {"better-auth.session_token=s"}}},
		{"no cookie header", http.Header{"Accept": {"*/*"}}, http.Header{"Accept": {"*/*"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			headers.RemoveCookies(tt.in, names)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Errorf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
}

func BenchmarkStripInbound(b *testing.B) {
	base := http.Header{
		"Accept": {"application/json"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"bench"},
		"Content-Type": {"application/json"}, "Cookie": {"a=1; better-auth.access_token=x"},
		"X-Forwarded-For": {"1.2.3.4"}, "X-User-Id": {"victim"}, "X_User_Id": {"victim"},
	}
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, len(base))
		for k, v := range base {
			h[k] = v
		}
		headers.StripInbound(h)
		headers.RemoveCookies(h, []string{"better-auth.access_token"})
	}
}
