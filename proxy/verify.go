package main

import (
	"net/http"
	"net/url"
	"strings"

	"gatehouse.dev/kit/httpx"
)

// Forward-auth request headers: where and how the original request arrived.
// ingress-nginx and Traefik send X-Forwarded-*; nginx's auth_request
// examples and Envoy's ext_authz configs often use X-Original-*.
const (
	headerForwardedURI    = "X-Forwarded-Uri"
	headerForwardedMethod = "X-Forwarded-Method"
	headerOriginalURI     = "X-Original-Uri"
	headerOriginalMethod  = "X-Original-Method"
	headerOriginalURL     = "X-Original-Url" // ingress-nginx's auth-url: the whole URL
)

var errVerifyConflict = httpx.Errorf(http.StatusBadRequest, "CONFLICTING_ORIGINAL_REQUEST",
	"X-Forwarded-Uri, X-Original-URI, X-Original-URL (or X-Forwarded-Method, X-Original-Method) name different requests, or one is repeated.")

var errVerifyBadURI = httpx.Errorf(http.StatusBadRequest, "BAD_ORIGINAL_URI", "X-Forwarded-Uri, X-Original-URI or X-Original-URL is not a request target.")

// dispatchVerify serves VERIFY_ADDR: the request is judged as if it had
// arrived at X-Forwarded-Uri (Traefik), X-Original-URI (nginx auth_request
// configs) or the path of X-Original-URL (ingress-nginx auth-url), with
// X-Forwarded-Method or X-Original-Method (else its own method), and with
// its own headers (the token, cookies, Origin). Without any of those
// headers it is judged at its own path: Envoy's ext_authz HTTP service
// sends the original path and method as the check request's own. The answer is the proxy's own decision: 200 with X-User-ID and
// the identity headers when it would forward, else the 401, 403, 404 or 429
// it would give. Nothing is forwarded.
//
// This listener must be reachable only by the ingress (it believes the
// headers above from anyone who can reach it); client addresses and
// X-Forwarded-Host/Proto come through TRUSTED_PROXIES as on the public one.
func (s *server) dispatchVerify(w http.ResponseWriter, r *http.Request) {
	// Ingresses differ in which header they set, and pass the client's own
	// headers through: ingress-nginx sets X-Original-URL and forwards a
	// client's X-Forwarded-Uri untouched. So every one that is present must
	// name the same target (and appear once), else the request is refused:
	// a client cannot have a harmless path judged in place of the real one.
	var uris []string
	for _, name := range []string{headerForwardedURI, headerOriginalURI, headerOriginalURL} {
		vals := r.Header.Values(name)
		if len(vals) > 1 {
			httpx.WriteError(w, r, errVerifyConflict)
			return
		}
		if len(vals) == 1 && strings.TrimSpace(vals[0]) != "" {
			v := strings.TrimSpace(vals[0])
			if name == headerOriginalURL {
				v = requestTarget(v)
			}
			uris = append(uris, v)
		}
	}
	uri := r.RequestURI
	if len(uris) > 0 {
		uri = uris[0]
		for _, o := range uris[1:] {
			if o != uri {
				httpx.WriteError(w, r, errVerifyConflict)
				return
			}
		}
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || !strings.HasPrefix(uri, "/") {
		httpx.WriteError(w, r, errVerifyBadURI)
		return
	}
	// Without a method header, the forward-auth request's own method:
	// nginx's auth_request subrequest and Envoy's ext_authz check request
	// carry the original one. Never a default of GET, which would let an
	// unsafe cookie request skip the origin rule. Present method headers
	// must agree, as the URI headers must.
	method := r.Method
	seen := false
	for _, name := range []string{headerForwardedMethod, headerOriginalMethod} {
		vals := r.Header.Values(name)
		if len(vals) > 1 {
			httpx.WriteError(w, r, errVerifyConflict)
			return
		}
		if len(vals) == 1 && strings.TrimSpace(vals[0]) != "" {
			v := strings.TrimSpace(vals[0])
			if seen && v != method {
				httpx.WriteError(w, r, errVerifyConflict)
				return
			}
			method, seen = v, true
		}
	}
	if !methodToken(method) {
		httpx.WriteError(w, r, httpx.Errorf(http.StatusBadRequest, "BAD_METHOD", "X-Forwarded-Method is not an HTTP method."))
		return
	}
	// Only the path, query and method change: the Request (and its context
	// with Observe's state) is the same one, so the access log shows the
	// judged path.
	r.URL, r.RequestURI, r.Method = u, uri, method
	s.route(w, r, false)
}

// verifyOK is the forward-auth verdict for a request every check let
// through: 200 with the identity headers an upstream would have received
// (none on auth: none routes, or optional ones without a token).
func (s *server) verifyOK(x *exchange, _ *http.Request) {
	h := x.Header()
	setIdentity(x, func(k, v string) { h.Set(k, v) })
	x.WriteHeader(http.StatusOK)
}

// requestTarget returns the path and query of an absolute http(s) URL as
// written (no re-encoding, so the path checks see what the client sent), or
// "" when full is not one.
func requestTarget(full string) string {
	scheme, rest, ok := strings.Cut(full, "://")
	if !ok || (!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https")) {
		return ""
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "/"
	}
	return rest[i:]
}

// methodToken reports whether m looks like a method: 1-16 upper-case letters.
func methodToken(m string) bool {
	if len(m) == 0 || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}
