package main

import (
	"net/http"
	"sync/atomic"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/token"
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

// exchange is one request's response writer and the facts dispatch decided
// about it (client IP, scheme, host). It is the only per-request allocation
// dispatch makes, and it lets ModifyResponse, which sees only the outbound
// request's context, mark the response as the upstream's.
//
// Responses the proxy makes itself (errors, 429, 401/403, 404, 502/504,
// healthz, readyz) get, when their header is written:
//
//   - X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer,
//   - Cache-Control: no-store (they describe this moment: a cached 401 or 429
//     is wrong a second later),
//   - Strict-Transport-Security when the client used https (TLS on our
//     listener, or X-Forwarded-Proto: https from a TRUSTED_PROXIES peer;
//     never a client's own header, which requestInfo ignores).
//
// Upstream responses are left as the upstream made them, except that
// secureResponse adds HSTS on https and, for authsvc, no-store, when absent.
type exchange struct {
	http.ResponseWriter
	info     reqInfo
	user     string        // the verified subject, set by checkToken; "" before
	claims   *token.Claims // the verified token's claims (shared: read only); nil before
	identity []string      // values of table.identity's headers ("" = not sent); nil: none
	table    *routeTable   // the routes file table the request was routed by; nil: built-in routing
	proxied  bool          // ModifyResponse ran: the headers are the upstream's
	wroteHdr bool
	// bodyErr is the error reading the client's request body hit while it
	// was being forwarded (the client sent less than it promised, or broke
	// its chunking): the request's fault, not the upstream's.
	// Set from the transport's write goroutine, read by the error handler.
	bodyErr atomic.Bool
}

func (x *exchange) https() bool { return x.info.scheme == "https" }

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

// Unwrap lets http.ResponseController (ReverseProxy's flushes, upgrades)
// reach the writer underneath.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// secureResponse is ReverseProxy.ModifyResponse for upstream kind: it marks
// the exchange as proxied and adds what an upstream may have left out.
func secureResponse(kind upstreamKind) func(*http.Response) error {
	return func(resp *http.Response) error {
		x := exchangeFrom(resp.Request.Context())
		if x == nil {
			return nil
		}
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
