package main

import (
	"errors"
	"net/http"
	"time"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/clientip"
	"gatehouse.dev/proxy/internal/pathclass"
	"gatehouse.dev/proxy/internal/ratelimit"
)

var (
	errBadPath          = httpx.Errorf(http.StatusBadRequest, "BAD_PATH", "The path is not canonical (dot segments, empty segments, semicolons, or encoded slashes, backslashes, dots, semicolons, percent signs or NUL).")
	errNoKeys           = errors.New("no token verification key yet: JWKS has not loaded")
	errBackendUnhealthy = errors.New("backend /healthz answered 5xx")
)

// addRoutes is the whole surface of the proxy without PROXY_ROUTES_FILE, by
// route class (see pathclass): what each class gets and in which order.
// With forward false the upstreams are replaced by the forward-auth verdict
// (VERIFY_ADDR): the same decisions, answered instead of forwarded.
func (s *server) addRoutes(forward bool) map[pathclass.Class]step {
	var backend, authsvc, web step
	web = serve(httpx.NotFoundHandler())
	if forward {
		backend = s.boundTunnel(serve(s.newReverseProxy(proxySpec{name: "backend", target: s.cfg.BackendURL, kind: toBackend, timeout: s.cfg.UpstreamTimeout})))
		authsvc = serve(s.newReverseProxy(proxySpec{name: "authsvc", target: s.cfg.AuthsvcURL, kind: toAuthsvc, timeout: s.cfg.UpstreamTimeout}))
		if s.cfg.WebURL != nil {
			web = serve(s.newReverseProxy(proxySpec{name: "web", target: s.cfg.WebURL, kind: toWeb, timeout: s.cfg.UpstreamTimeout}))
		}
	} else {
		backend, authsvc = s.verifyOK, s.verifyOK
		if s.cfg.WebURL != nil {
			web = s.verifyOK
		}
	}
	strict := s.rateLimit(pathclass.AuthStrict, s.cfg.AuthRateLimit)
	general := s.rateLimit(pathclass.Auth, s.cfg.AuthGeneralRateLimit)
	readyClient := &http.Client{Transport: newTransport(2 * time.Second), Timeout: 2 * time.Second}

	health, ready := serve(getOnly(httpx.Healthz())), serve(getOnly(httpx.Readyz(s.lc, s.readyCheck(readyClient))))
	if !forward {
		// On the forward-auth listener /healthz and /readyz are the
		// application's paths, judged like the rest of what is outside
		// /api: never a 200 for the proxy's own health, which would let
		// the ingress pass them unauthenticated.
		health, ready = web, web
	}
	return map[pathclass.Class]step{
		pathclass.Healthz:    health,
		pathclass.Readyz:     ready,
		pathclass.AuthStrict: strict(authsvc),  // sign-in, sign-up: AUTH_RATE_LIMIT
		pathclass.Auth:       general(authsvc), // rest of /api/auth: AUTH_GENERAL_RATE_LIMIT
		pathclass.API:        s.checkToken(authRequired, nil)(backend),
		pathclass.Web:        web,
		pathclass.NotFound:   serve(httpx.NotFoundHandler()),
		pathclass.BadPath:    func(x *exchange, r *http.Request) { httpx.WriteError(x, r, errBadPath) },
	}
}

// rateLimit limits per client IP (IPv6 by /64) in class's own bucket.
func (s *server) rateLimit(class pathclass.Class, lim ratelimit.Limit) func(step) step {
	return func(next step) step {
		return func(x *exchange, r *http.Request) {
			res, ok := s.limiter.Admit(x, r, string(class), clientip.Key(x.info.clientIP), lim)
			if !ok {
				s.m.rateLimited.WithLabelValues(string(class), string(res.Backend)).Inc()
				return
			}
			next(x, r)
		}
	}
}

func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.WriteError(w, r, httpx.ErrMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
