package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/pathclass"
)

// routeTable is a routes file built into handlers. Requests read it through
// server.table (an atomic.Pointer) and a reload swaps it whole: a request
// keeps the table it started with to its end, so nothing in flight changes
// under it and no connection is dropped.
type routeTable struct {
	routes   []*route // longest prefix first
	identity []identityHeader
	strip    map[string]bool // identity headers, normalised, stripped inbound everywhere
	cors     *corsConfig
	// preflight answers CORS preflights on the public listener, and
	// preflightVerify on the forward-auth one; nil without cors:.
	preflight, preflightVerify step
}

// route is one entry of a routeTable with its handlers built.
type route struct {
	routeEntry
	label  string // the "route" metrics label: bounded by the file, never by requests
	proxy  step   // rate limit, auth, then the upstream
	verify step   // the same decisions, answered by the forward-auth listener
}

// lookup returns the route with the longest prefix of rawPath, or nil. The
// routes are few and sorted longest first, so the first match wins; the
// scan compares prefixes only (no allocation).
func (t *routeTable) lookup(rawPath string) *route {
	for _, r := range t.routes {
		if strings.HasPrefix(rawPath, r.prefix) {
			return r
		}
	}
	return nil
}

// buildTable turns a checked routes file into handlers. It shares upstream
// connection pools with earlier tables (see transportFor), so a reload does
// not open new connections to unchanged upstreams.
func (s *server) buildTable(c routeConfig) *routeTable {
	t := &routeTable{identity: c.identity, strip: c.stripSet(), cors: c.cors}
	if c.cors != nil {
		t.preflight, t.preflightVerify = serve(s.preflight(c.cors, true)), serve(s.preflight(c.cors, false))
	}
	for _, e := range c.routes {
		rt := &route{routeEntry: e, label: "prefix:" + e.prefix}
		kind := toBackend // optional, required: credentials removed, identity added
		if e.auth == authNone {
			kind = toOpen // the proxy did not read the credentials; the upstream may
		}
		rp := s.newReverseProxy(proxySpec{name: e.upstream, target: e.target, kind: kind, timeout: e.timeout, table: t})
		rt.proxy = s.routeChain(t, rt, serve(rp), true)
		rt.verify = s.routeChain(t, rt, s.verifyOK, false)
		t.routes = append(t.routes, rt)
	}
	return t
}

// routeChain is one route's decisions in order: the rate limit, the token
// check, then (forwarding only) the tunnel bound, the long route's deadlines
// and terminal.
//
// A long route's deadlines are extended only after the token check: a
// client without a token must not hold a connection open for the route's
// hours by trickling a body the 401 leaves unread.
func (s *server) routeChain(t *routeTable, rt *route, terminal step, forward bool) step {
	h := terminal
	if forward && rt.timeout > s.cfg.UpstreamTimeout {
		h = longLived(rt.timeout, h)
	}
	if forward {
		h = s.boundTunnel(h)
	}
	if rt.auth != authNone {
		h = s.checkToken(rt.auth, t.identity)(h)
	}
	if rt.limit == rateAuth {
		h = s.authLimits(h)
	}
	return h
}

// authLimits applies AUTH_RATE_LIMIT to sign-in and sign-up paths and
// AUTH_GENERAL_RATE_LIMIT to every other path of a rate_limit: auth route,
// each in its own bucket, as the built-in /api/auth routes do.
func (s *server) authLimits(next step) step {
	strict := s.rateLimit(pathclass.AuthStrict, s.cfg.AuthRateLimit)(next)
	general := s.rateLimit(pathclass.Auth, s.cfg.AuthGeneralRateLimit)(next)
	return func(x *exchange, r *http.Request) {
		if pathclass.Classify(r.URL.Path, false) == pathclass.AuthStrict {
			strict(x, r)
			return
		}
		general(x, r)
	}
}

// deadlineSlack is how long after a long route's timeout the connection's
// read and write deadlines fall: the route's own context ends the exchange
// first, with a proper answer when it still can.
const deadlineSlack = 10 * time.Second

// longLived gives a route whose timeout exceeds UPSTREAM_TIMEOUT (an event
// stream, a WebSocket, a large upload) its own connection deadlines, past
// the server's ReadTimeout and WriteTimeout that keep every other route
// tight, and ends the exchange when the timeout passes.
func longLived(timeout time.Duration, next step) step {
	return func(x *exchange, r *http.Request) {
		rc := http.NewResponseController(x)
		deadline := time.Now().Add(timeout + deadlineSlack)
		if err := rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			httpx.LogFrom(r.Context()).Warn("cannot extend the write deadline", zap.Error(err))
		}
		if err := rc.SetReadDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			httpx.LogFrom(r.Context()).Warn("cannot extend the read deadline", zap.Error(err))
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next(x, r.WithContext(ctx))
	}
}
