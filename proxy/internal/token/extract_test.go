package token_test

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse.dev/proxy/internal/token"
)

var names = token.CookieNames("better-auth")

func TestExtract(t *testing.T) {
	const tok = "aaa.bbb.ccc"
	for _, tt := range []struct {
		name   string
		h      http.Header
		want   string
		src    token.Source
		reason token.Reason
	}{
		{"none", http.Header{}, "", token.SourceNone, token.ReasonMissing},
		{"bearer", http.Header{"Authorization": {"Bearer " + tok}}, tok, token.SourceHeader, ""},
		{"bearer any case", http.Header{"authorization": {"bEaReR  " + tok}}, tok, token.SourceHeader, ""},
		{"cookie", http.Header{"Cookie": {"x=1; better-auth.access_token=" + tok}}, tok, token.SourceCookie, ""},
		{"secure cookie", http.Header{"Cookie": {"__Secure-better-auth.access_token=" + tok}}, tok, token.SourceCookie, ""},
		{"bearer equals cookie", http.Header{"Authorization": {"Bearer " + tok}, "Cookie": {"better-auth.access_token=" + tok}}, tok, token.SourceHeader, ""},
		{"bearer differs from cookie", http.Header{"Authorization": {"Bearer " + tok}, "Cookie": {"better-auth.access_token=x.y.z"}}, "", token.SourceNone, token.ReasonAmbiguous},
		{"two authorization values", http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, "", token.SourceNone, token.ReasonAmbiguous},
		{"two authorization keys", http.Header{"Authorization": {"Bearer " + tok}, "authorization": {"Bearer " + tok}}, "", token.SourceNone, token.ReasonAmbiguous},
		{"two different cookies", http.Header{"Cookie": {"better-auth.access_token=a.b.c", "better-auth.access_token=d.e.f"}}, "", token.SourceNone, token.ReasonAmbiguous},
		{"same cookie twice", http.Header{"Cookie": {"better-auth.access_token=" + tok + "; better-auth.access_token=" + tok}}, tok, token.SourceCookie, ""},
		{"basic auth", http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}}, "", token.SourceNone, token.ReasonMalformed},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, "", token.SourceNone, token.ReasonMalformed},
		{"oversized bearer", http.Header{"Authorization": {"Bearer " + strings.Repeat("a", token.MaxTokenBytes+1)}}, "", token.SourceNone, token.ReasonTooLarge},
		{"oversized cookie", http.Header{"Cookie": {"better-auth.access_token=" + strings.Repeat("a", token.MaxTokenBytes+1)}}, "", token.SourceNone, token.ReasonTooLarge},
		{"other prefix cookie ignored", http.Header{"Cookie": {"other.access_token=" + tok}}, "", token.SourceNone, token.ReasonMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, src, err := token.Extract(tt.h, names)
			if got != tt.want || src != tt.src || token.ReasonOf(err) != tt.reason {
				t.Errorf("Extract = %q, %v, %v; want %q, %v, %q", got, src, err, tt.want, tt.src, tt.reason)
			}
		})
	}
}

// FuzzExtract: whatever the headers, Extract never panics, never returns a
// token over the cap, returns a token only with a source, and never returns
// one of two different candidates.
func FuzzExtract(f *testing.F) {
	for _, s := range [][2]string{
		{"Bearer a.b.c", ""}, {"", "better-auth.access_token=a.b.c"}, {"Bearer a.b.c", "better-auth.access_token=x.y.z"},
		{"bearer    a.b.c", "x=1;better-auth.access_token=a.b.c"}, {"Basic x", ""}, {"Bearer", ""},
		{"Bearer " + strings.Repeat(".", 9000), ""}, {"", "better-auth.access_token=\"a.b.c\"; __Secure-better-auth.access_token=a.b.c"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, authz, cookie string) {
		h := http.Header{}
		if authz != "" {
			h.Set("Authorization", authz)
		}
		if cookie != "" {
			h.Set("Cookie", cookie)
		}
		raw, src, err := token.Extract(h, names)
		if err != nil {
			if raw != "" || src != token.SourceNone || token.ReasonOf(err) == "" {
				t.Fatalf("error %v with token %q source %v", err, raw, src)
			}
			return
		}
		if raw == "" || src == token.SourceNone || len(raw) > token.MaxTokenBytes {
			t.Fatalf("ok with token %q (len %d) source %v", raw, len(raw), src)
		}
		if src == token.SourceHeader && !strings.Contains(authz, raw) {
			t.Fatalf("bearer token %q not from the header", raw)
		}
	})
}
