package main

import (
	"net/http"

	"gatehouse.dev/kit/httpx"
)

// Response security headers.
const (
	headerContentTypeOptions = "X-Content-Type-Options"
	headerReferrerPolicy     = "Referrer-Policy"
	headerCacheControl       = "Cache-Control"
	headerHSTS               = "Strict-Transport-Security"

	// hstsValue: one year, as browsers' preload lists require at least; no
	// "preload", which is a decision for the domain's owner.
	hstsValue = "max-age=31536000; includeSubDomains"
)

// WriteHeader gives the proxy's own answers, as their header is written,
// the security headers:
//
//   - X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer,
//   - Cache-Control: no-store (they describe this moment: a cached 401 or 429
//     is wrong a second later),
//   - Strict-Transport-Security when the client used https (TLS on our
//     listener, or X-Forwarded-Proto: https from a TRUSTED_PROXIES peer;
//     never a client's own header, which requestInfo ignores).
//
// That covers errors, 429, 401/403, 404, 502/504, healthz and readyz.
// Upstream responses are left as the upstream made them, except that
// secureResponse adds HSTS on https and, for authsvc, no-store, when absent.
func (x *exchange) WriteHeader(code int) {
	if !x.wroteHdr && code >= 200 { // 1xx may precede the real header
		x.wroteHdr = true
		if !x.proxied {
			h := x.ResponseWriter.Header()
			h.Set(headerContentTypeOptions, "nosniff")
			h.Set(headerReferrerPolicy, "no-referrer")
			h.Set(headerCacheControl, "no-store")
			if x.https() {
				h.Set(headerHSTS, hstsValue)
			}
		}
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if !x.wroteHdr {
		x.WriteHeader(http.StatusOK)
	}
	return x.ResponseWriter.Write(b)
}

// secureResponse is ReverseProxy.ModifyResponse for upstream kind: it marks
// the exchange as proxied and adds what an upstream may have left out.
func secureResponse(kind upstreamKind) func(*http.Response) error {
	return func(resp *http.Response) error {
		// ReverseProxy hands this hook only the outbound request, whose
		// context is the inbound one.
		x := exchangeFrom(resp.Request.Context())
		x.proxied = true
		// Every service echoes the request ID it was given, which is the
		// one the proxy set and already put on its answer: keep one
		// (issue 12: proxied answers carried X-Request-Id twice).
		delete(resp.Header, httpx.HeaderRequestID)
		if x.table != nil && x.table.cors != nil {
			// The proxy answers CORS for the routes file's origins (see
			// corsHeaders); an upstream's own allowance would contradict it.
			resp.Header.Del(headerACAllowOrigin)
			resp.Header.Del(headerACAllowCredentials)
		}
		// What the upstream left out goes straight onto our answer's
		// header, which ReverseProxy then fills with the upstream's: set
		// on resp.Header it would be allocated twice (set, then copied).
		// Only names absent from resp.Header are set, so nothing doubles.
		h, dst := resp.Header, x.ResponseWriter.Header()
		var vals [4]string
		n := 0
		set := func(k, v string) {
			vals[n] = v
			dst[k] = vals[n : n+1 : n+1]
			n++
		}
		if x.https() && len(h.Values(headerHSTS)) == 0 {
			set(headerHSTS, hstsValue)
		}
		// Session and token answers must never sit in a shared or browser
		// cache, whatever authsvc remembered to say.
		if kind == toAuthsvc && len(h.Values(headerCacheControl)) == 0 {
			set(headerCacheControl, "no-store")
		}
		// The same baseline the proxy's own answers carry, unless the
		// upstream chose its own (the demo sets a stricter policy).
		if len(h.Values(headerReferrerPolicy)) == 0 {
			set(headerReferrerPolicy, "no-referrer")
		}
		if len(h.Values(headerContentTypeOptions)) == 0 {
			set(headerContentTypeOptions, "nosniff")
		}
		return nil
	}
}
