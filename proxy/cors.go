package main

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/wire"
)

// CORS headers (Fetch standard, "CORS protocol").
const (
	headerACAllowOrigin      = "Access-Control-Allow-Origin"
	headerACAllowCredentials = "Access-Control-Allow-Credentials"
	headerACAllowMethods     = "Access-Control-Allow-Methods"
	headerACAllowHeaders     = "Access-Control-Allow-Headers"
	headerACMaxAge           = "Access-Control-Max-Age"
	headerACRequestMethod    = "Access-Control-Request-Method"
	headerACRequestHeaders   = "Access-Control-Request-Headers"
)

var errCORSOrigin = httpx.Errorf(http.StatusForbidden, "CORS_ORIGIN_NOT_ALLOWED", "This origin may not make cross-origin requests here.")

// corsMethods are the methods a preflight may be granted.
var corsMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// maxCORSRequestHeaders bounds the Access-Control-Request-Headers echoed back.
const maxCORSRequestHeaders = 1024

// isPreflight reports whether r is a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get(headerACRequestMethod) != ""
}

// allowedOrigin returns the normalised Origin of r when it is exactly one of
// c's origins, else "".
func (c *corsConfig) allowedOrigin(r *http.Request) string {
	vals := r.Header.Values("Origin")
	if len(vals) != 1 {
		return ""
	}
	o, ok := wire.ParseOrigin(vals[0])
	if !ok || !slices.Contains(c.origins, o) {
		return ""
	}
	return o
}

// corsHeaders adds, to a response the proxy forwards or makes itself, what
// lets a listed origin read it: Access-Control-Allow-Origin with that very
// origin (never "*"), and Allow-Credentials only when the file says so.
// Vary: Origin is on every answer of a CORS-enabled table, so a shared cache
// never serves one origin's answer to another. An unlisted origin gets no
// CORS headers, and the browser keeps the answer from the page. This is
// about reading answers; whether a cookie-authenticated request that
// changes state is accepted at all is still the origin rule of checkToken.
func corsHeaders(c *corsConfig, x *exchange, r *http.Request) {
	h := x.ResponseWriter.Header()
	h.Add("Vary", "Origin")
	o := c.allowedOrigin(r)
	if o == "" {
		return
	}
	h.Set(headerACAllowOrigin, o)
	if c.credentials {
		h.Set(headerACAllowCredentials, "true")
	}
}

// preflight answers a CORS preflight itself, without a token (browsers never
// send one on a preflight): 204 with the grant for a listed origin asking
// for a known method, else 403 CORS_ORIGIN_NOT_ALLOWED without any grant.
// On the forward-auth listener the same verdict is 200 or 403.
func (s *server) preflight(c *corsConfig, forward bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Add("Vary", headerACRequestMethod)
		h.Add("Vary", headerACRequestHeaders)
		o := c.allowedOrigin(r)
		method := strings.TrimSpace(r.Header.Get(headerACRequestMethod))
		if o == "" || !slices.Contains(corsMethods, method) {
			httpx.WriteError(w, r, errCORSOrigin)
			return
		}
		if !forward {
			w.WriteHeader(http.StatusOK)
			return
		}
		h.Set(headerACAllowOrigin, o)
		if c.credentials {
			h.Set(headerACAllowCredentials, "true")
		}
		h.Set(headerACAllowMethods, strings.Join(corsMethods, ", "))
		if req := r.Header.Get(headerACRequestHeaders); req != "" && len(req) <= maxCORSRequestHeaders && headerList(req) {
			h.Set(headerACAllowHeaders, req)
		}
		h.Set(headerACMaxAge, strconv.Itoa(int(c.maxAge.Seconds())))
		w.WriteHeader(http.StatusNoContent)
	})
}

// headerList reports whether s is a comma-separated list of header names,
// so only names (never other text) are echoed back.
func headerList(s string) bool {
	for part := range strings.SplitSeq(s, ",") {
		if !headerNameRE.MatchString(strings.TrimSpace(part)) {
			return false
		}
	}
	return true
}
