package pathclass_test

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"gatehouse.dev/proxy/internal/pathclass"
)

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		target string
		web    bool
		want   pathclass.Class
	}{
		{"/healthz", false, pathclass.Healthz},
		{"/readyz", false, pathclass.Readyz},
		{"/healthz/", false, pathclass.NotFound},
		{"/api/auth/sign-in/email", false, pathclass.AuthStrict},
		{"/api/auth/sign-up/email", false, pathclass.AuthStrict},
		{"/api/auth/sign-in", false, pathclass.AuthStrict},
		{"/api/auth/sign-inx", false, pathclass.Auth},
		{"/api/auth/change-password", false, pathclass.AuthStrict},
		{"/api/auth/delete-user", false, pathclass.AuthStrict},
		{"/api/auth/request-password-reset", false, pathclass.AuthStrict},
		{"/api/auth/send-verification-email", false, pathclass.AuthStrict},
		{"/api/auth/update-user", false, pathclass.Auth},
		{"/api/auth/get-session", false, pathclass.Auth},
		{"/api/auth", false, pathclass.Auth},
		{"/api/authx", false, pathclass.API},
		{"/api/v1/todos", false, pathclass.API},
		{"/api/v1/todos/", false, pathclass.API},
		{"/api/v1/todos?x=/../a", false, pathclass.API},
		{"/api/v1/todos?x=a;b", false, pathclass.API},
		// Servlet path parameters (issue 12): Tomcat, Jetty and Spring
		// read "..;" as "..", so these would reach the backend's routes
		// through authsvc's prefix, or the other way round.
		{"/api/auth/..;/v1/todos", false, pathclass.BadPath},
		{"/api/auth/..;a=b/v1/todos", false, pathclass.BadPath},
		{"/api/auth;/../v1/todos", false, pathclass.BadPath},
		{"/api/auth;x=1/sign-in/email", false, pathclass.BadPath},
		{"/api;jsessionid=1/v1/todos", false, pathclass.BadPath},
		{"/api/v1/todos;", false, pathclass.BadPath},
		{"/api/auth/%3b/v1/todos", false, pathclass.BadPath},
		{"/api/auth/..%3B/v1/todos", false, pathclass.BadPath},
		{"/index.html;.js", true, pathclass.BadPath},
		// Escaped unreserved characters mean the character itself to a
		// decoding backend; a routes file matches the raw path.
		{"/%61pi/v1/todos", false, pathclass.BadPath},
		{"/api/v1/%74odos", false, pathclass.BadPath},
		{"/%7Euser", true, pathclass.BadPath},
		{"/a%2Db", true, pathclass.BadPath},
		{"/caf%C3%A9", true, pathclass.Web},
		{"/a%20b", true, pathclass.Web},
		{"/api", false, pathclass.API},
		{"/apix", false, pathclass.NotFound},
		{"/API/v1/todos", false, pathclass.NotFound},
		{"/", false, pathclass.NotFound},
		{"/", true, pathclass.Web},
		{"/index.html", true, pathclass.Web},
		{"/a%20b", true, pathclass.Web},
		// Refused outright.
		{"/api/auth/../v1/todos", false, pathclass.BadPath},
		{"/api/auth/%2e%2e/v1/todos", false, pathclass.BadPath},
		{"/api/auth/%2E%2E/v1/todos", false, pathclass.BadPath},
		{"/api/auth/.%2e/v1/todos", false, pathclass.BadPath},
		{"/api/auth%2f..%2fv1/todos", false, pathclass.BadPath},
		{"/api/auth%2F..%2Fv1", false, pathclass.BadPath},
		{"/api/auth/..%5cv1/todos", false, pathclass.BadPath},
		{"/api/auth/..\\v1/todos", false, pathclass.BadPath},
		{"/api/auth/x%00/../v1", false, pathclass.BadPath},
		{"/api/auth/%252e%252e/v1", false, pathclass.BadPath},
		{"//api/v1/todos", false, pathclass.BadPath},
		{"/api//v1/todos", false, pathclass.BadPath},
		{"/api/./v1/todos", false, pathclass.BadPath},
		{"/api/v1/todos/.", false, pathclass.BadPath},
		{"/api/v1/..", false, pathclass.BadPath},
		{"/..", true, pathclass.BadPath},
		{"/a%0ab", true, pathclass.BadPath},
		{"*", false, pathclass.BadPath},
	} {
		u, err := url.ParseRequestURI(tt.target)
		if err != nil {
			u = &url.URL{Path: tt.target}
		}
		if got := pathclass.Of(u, tt.web); got != tt.want {
			t.Errorf("Of(%q, web=%v) = %s, want %s", tt.target, tt.web, got, tt.want)
		}
	}
}

// decodeAll percent-decodes s until it stops changing, and turns backslashes
// into slashes, the most liberal reading any downstream could make.
func decodeAll(s string) string {
	for range 8 {
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
	}
	return strings.ReplaceAll(s, "\\", "/")
}

// FuzzClassify checks that no request target that passes Check can be read
// by a more liberal downstream (repeated decoding, backslash as slash, dot
// segment removal) as a path of a different class. In particular nothing
// classified outside /api can turn into a JWT route.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"/api/v1/todos", "/api/auth/../v1/todos", "/api/auth/%2e%2e/v1/todos", "/api/auth%2f..%2fv1",
		"/api/auth/..%5cv1", "//api/v1", "/api/auth/sign-in/email", "/x%00y", "/%252e", "/a;/../api/v1",
		"/api/auth/./../v1", "/healthz", "/api/auth/x%2F..%2F..%2Fv1/todos", "/api/auth/%u002e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		got := pathclass.Of(u, false)
		if got == pathclass.BadPath {
			return
		}
		if pathclass.Check(u) != nil {
			t.Fatalf("Of accepted %q but Check refuses it", target)
		}
		p := u.Path
		// Canonical: cleaning changes nothing but a trailing slash.
		if c := path.Clean(p); c != p && c+"/" != p {
			t.Fatalf("accepted non-canonical %q (clean %q)", p, c)
		}
		liberal := path.Clean(decodeAll(u.EscapedPath()))
		if strings.HasSuffix(p, "/") && liberal != "/" {
			liberal += "/"
		}
		if alt := pathclass.Classify(liberal, false); alt != got {
			t.Fatalf("%q classified %s, but a liberal reading %q is %s", target, got, liberal, alt)
		}
	})
}
