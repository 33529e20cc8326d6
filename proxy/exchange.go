package main

// exchange.go: the proxy's per-request state, how it reaches the handlers,
// and how the few callbacks that are not handed it find it.

import (
	"context"
	"net/http"
	"net/netip"
	"sync/atomic"

	"gatehouse.dev/proxy/internal/token"
)

// exchange is one request as the proxy serves it: the response writer its
// handlers answer through (secure.go adds the security headers), the facts
// dispatch decided about the request (client IP, scheme, host), and what the
// token check learned (subject, claims, identity header values). It is the
// only per-request allocation the proxy makes, and its context rides in it.
//
// dispatch takes it from the request's context once and hands it to the
// route's steps explicitly. Only ReverseProxy's hooks (Rewrite,
// ModifyResponse, ErrorHandler), which ReverseProxy calls with a request and
// nothing else, look it up with exchangeFrom.
type exchange struct {
	http.ResponseWriter
	ctx      exchangeContext
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
	// Set wherever the body is read for the upstream (Transport's write
	// goroutine, or h1 on the handler's), read by the error handler.
	bodyErr atomic.Bool
}

// reqInfo are facts about the request, decided once by requestInfo.
type reqInfo struct {
	clientIP netip.Addr
	scheme   string // the scheme the client used
	host     string // the Host the client used
}

func (x *exchange) https() bool { return x.info.scheme == "https" }

// Unwrap lets http.ResponseController (ReverseProxy's flushes, upgrades)
// reach the writer underneath.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// exchangeKey is the context key of the request's *exchange.
type exchangeKey struct{}

// exchangeContext is the context a request is served with: the one
// httpx.Observe made, answering Value(exchangeKey{}) with the exchange it
// belongs to. Being a field of the exchange, it costs no allocation of its
// own, where context.WithValue would cost one on every request.
type exchangeContext struct {
	context.Context
	x *exchange
}

func (c *exchangeContext) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return c.x
	}
	return c.Context.Value(key)
}

// withExchange gives a request a new exchange: it is the derive function of
// the proxy's httpx.ObserveWithContext, so every request the proxy serves
// has one.
func withExchange(ctx context.Context) context.Context {
	x := &exchange{}
	x.ctx = exchangeContext{Context: ctx, x: x}
	return &x.ctx
}

// exchangeFrom returns the exchange of the request whose context is ctx (or
// one derived from it). Every request the proxy serves has one
// (withExchange); outside them it returns nil.
func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// A step is one decision of a route (rate limit, token check, tunnel
// bound), or its terminal (an upstream, the forward-auth verdict, the
// proxy's own answers). It is handed the request's exchange, which is also
// the writer it answers through.
type step func(x *exchange, r *http.Request)

// serve adapts h (a ReverseProxy, a health handler) into a step: h
// answers through the exchange.
func serve(h http.Handler) step {
	return func(x *exchange, r *http.Request) { h.ServeHTTP(x, r) }
}
