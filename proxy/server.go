package main

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/clientip"
	"gatehouse.dev/proxy/internal/pathclass"
	"gatehouse.dev/proxy/internal/ratelimit"
	"gatehouse.dev/proxy/internal/token"
)

// server holds the proxy's dependencies; its handlers are built once.
type server struct {
	cfg         config
	log         *zap.Logger
	m           *metrics
	verifier    *token.Verifier
	limiter     *ratelimit.Limiter
	lc          *httpx.Lifecycle
	cookieNames []string
	routes      map[pathclass.Class]http.Handler
}

// newServer returns the proxy's handler. Middleware order, outside in:
//
//  1. untrustedRequestID: a client's X-Request-Id is used only from a
//     trusted proxy, so log correlation cannot be forged from outside.
//  2. httpx.Observe: request ID, access log, panic recovery, metrics.
//  3. s.dispatch: client IP and origin facts, path check and class (the
//     "route" label), then the class's handler from routes.go.
func newServer(cfg config, log *zap.Logger, m *metrics, v *token.Verifier, l *ratelimit.Limiter, lc *httpx.Lifecycle) http.Handler {
	s := &server{cfg: cfg, log: log, m: m, verifier: v, limiter: l, lc: lc, cookieNames: token.CookieNames(cfg.CookiePrefix)}
	s.routes = s.addRoutes()
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = httpx.Observe(log, m.Metrics, h)
	h = s.untrustedRequestID(h)
	return h
}

// reqInfo are facts about the request, decided once.
type reqInfo struct {
	clientIP    netip.Addr
	peerTrusted bool
	scheme      string // the scheme the client used
	host        string // the Host the client used
}

type infoKey struct{}

// infoFrom returns the request facts dispatch decided; outside dispatch, the
// zero facts with scheme "http".
func infoFrom(ctx context.Context) reqInfo {
	if x := exchangeFrom(ctx); x != nil {
		return x.info
	}
	return reqInfo{scheme: "http"}
}

// exchangeFrom returns the request's exchange, or nil outside dispatch.
// Under httpx.Observe it lives in the request's state (no context or
// request copy of its own); otherwise, as in tests of dispatch alone, in
// the context under infoKey.
func exchangeFrom(ctx context.Context) *exchange {
	if x, ok := httpx.RequestValue(ctx).(*exchange); ok {
		return x
	}
	x, _ := ctx.Value(infoKey{}).(*exchange)
	return x
}

// requestInfo works out the client address and the request's own origin.
// X-Forwarded-Proto and X-Forwarded-Host are believed only from a trusted
// proxy; their first element is the one the outermost proxy saw.
func (s *server) requestInfo(r *http.Request) reqInfo {
	ip, trusted := s.cfg.TrustedProxies.ClientIP(r.RemoteAddr, r.Header)
	i := reqInfo{clientIP: ip, peerTrusted: trusted, scheme: "http", host: r.Host}
	if r.TLS != nil {
		i.scheme = "https"
	}
	if trusted {
		if p := firstElem(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			i.scheme = p
		}
		if h := firstElem(r.Header.Get("X-Forwarded-Host")); h != "" {
			i.host = h
		}
	}
	return i
}

// addrString formats a netip.Addr held elsewhere, for zap.Stringer.
type addrString netip.Addr

func (a *addrString) String() string { return (*netip.Addr)(a).String() }

func firstElem(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.ToLower(strings.TrimSpace(first))
}

func (s *server) untrustedRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.TrustedProxies.Trusted(clientip.Peer(r.RemoteAddr)) {
			r.Header.Del(httpx.HeaderRequestID)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) dispatch(w http.ResponseWriter, r *http.Request) {
	x := &exchange{ResponseWriter: w, info: s.requestInfo(r)}
	class := pathclass.Of(r.URL, s.cfg.WebURL != nil)
	// Observe reads r.Pattern for its "route" label, as it would a ServeMux
	// pattern; the class is the proxy's route.
	r.Pattern = string(class)
	// The address is passed by pointer into x (already on the heap), so
	// the field costs no allocation and is formatted only if logged.
	ctx := httpx.AddLogFields(r.Context(), zap.String("route_class", string(class)), zap.Stringer("client_ip", (*addrString)(&x.info.clientIP)))
	if !httpx.SetRequestValue(ctx, x) {
		r = r.WithContext(context.WithValue(ctx, infoKey{}, x))
	}
	s.routes[class].ServeHTTP(x, r)
}

// readyCheck: not ready until a verification key is available; ready only
// while the backend answers. Redis is not checked: the limiter falls back.
func (s *server) readyCheck(backend *http.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		if !s.verifier.KeysReady() {
			return errNoKeys
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.BackendURL.String()+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := backend.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return errBackendUnhealthy
		}
		return nil
	}
}
