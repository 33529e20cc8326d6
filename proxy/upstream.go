package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/h1"
	"gatehouse.dev/proxy/internal/headers"
)

// Upstream errors (SPEC: unreachable 502, too slow 504).
var (
	errBadGateway     = httpx.Errorf(http.StatusBadGateway, "BAD_GATEWAY", "The upstream service is unreachable.")
	errGatewayTimeout = httpx.Errorf(http.StatusGatewayTimeout, "GATEWAY_TIMEOUT", "The upstream service took too long to answer.")
)

// upstreamKind says what an upstream may receive.
type upstreamKind int

const (
	// toAuthsvc keeps Authorization and every cookie: authsvc needs its
	// session cookie and Better Auth's bearer plugin reads Authorization.
	toAuthsvc upstreamKind = iota
	// toBackend drops Authorization and the access cookie and adds X-User-ID.
	toBackend
	// toWeb drops Authorization and the access cookie; no identity.
	toWeb
	// toOpen is a routes file's auth: none route: like toAuthsvc it passes
	// Authorization and cookies on untouched (the proxy never read them, and
	// the upstream may be an auth service), without toAuthsvc's no-store.
	toOpen
)

// proxySpec describes one ReverseProxy.
type proxySpec struct {
	name    string // upstream name: the metric label and log field
	target  *url.URL
	kind    upstreamKind
	timeout time.Duration // response-header timeout
	table   *routeTable   // the routes file table the route belongs to; nil: built-in routing
}

// transportKey identifies a connection pool: one per upstream and timeout,
// shared by every route and every reloaded table that uses them.
type transportKey struct {
	target  string
	timeout time.Duration
}

// transportFor returns the pool for target and timeout, creating it once.
// Callers hold s.reloadMu or run before the server starts.
func (s *server) transportFor(target *url.URL, timeout time.Duration) *h1.Transport {
	k := transportKey{target.String(), timeout}
	if t, ok := s.transports[k]; ok {
		return t
	}
	t := newTransport(timeout)
	s.transports[k] = t
	return t
}

// maxResponseHeaderBytes bounds an upstream's response header (Go's server
// allows a request header the same).
const maxResponseHeaderBytes = 1 << 20

// newTransport is the connection pool to one upstream: keep-alive sized for
// a sidecar under load, bounded dial and handshake, and UPSTREAM_TIMEOUT for
// the response headers (a stream may take longer once it has started).
// Requests with no body or a small one of declared length (h1.MaxBody),
// nearly every API call, run on the request's own goroutine (h1); the rest
// go through net/http's Transport.
func newTransport(timeout time.Duration) *h1.Transport {
	dial := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	const maxIdle, idleTimeout = 512, 90 * time.Second
	return &h1.Transport{
		Dial:                   dial,
		ResponseHeaderTimeout:  timeout,
		IdleConnTimeout:        idleTimeout,
		MaxIdleConns:           maxIdle,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		Fallback: &http.Transport{
			Proxy:                  nil, // upstreams are local; never honour HTTP_PROXY here
			DialContext:            dial,
			MaxIdleConns:           2 * maxIdle,
			MaxIdleConnsPerHost:    maxIdle,
			IdleConnTimeout:        idleTimeout,
			TLSHandshakeTimeout:    5 * time.Second,
			ExpectContinueTimeout:  time.Second,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
			// Upstreams are plain http:// on loopback or in the pod: HTTP/2
			// would need TLS, so do not set up for it.
			ForceAttemptHTTP2:  false,
			DisableCompression: true, // pass Accept-Encoding and bodies through untouched
		},
	}
}

// timedTransport records upstream latency to response headers.
type timedTransport struct {
	next   http.RoundTripper
	series *upstreamSeries
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	status := 0 // "error"
	if err == nil {
		status = resp.StatusCode
	}
	t.series.observe(status, time.Since(start))
	return resp, err
}

// newReverseProxy forwards to target. Every header decision is made in
// Rewrite, which runs after ReverseProxy has removed hop-by-hop headers
// (including any named by the client's Connection header), so nothing set
// here can be deleted by a hostile Connection: X-User-ID (golang/go#50580).
func (s *server) newReverseProxy(p proxySpec) *httputil.ReverseProxy {
	name, target, kind, t := p.name, p.target, p.kind, p.table
	nIdentity := 0
	var strip map[string]bool
	if t != nil {
		nIdentity, strip = len(t.identity), t.strip
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target) // same path as routed: Check admitted only canonical paths
			out := pr.Out.Header
			headers.StripInbound(out)
			headers.StripNamed(out, strip) // the routes file's identity headers, on every route
			// ReverseProxy hands Rewrite the request and nothing else.
			x := exchangeFrom(pr.In.Context())
			if pr.Out.Body != nil && pr.Out.Body != http.NoBody {
				pr.Out.Body = trackedBody{ReadCloser: pr.Out.Body, x: x}
			}
			info := &x.info
			// Every value below gets its own one-element slice (cap 1, so an
			// Add elsewhere copies rather than writes into a neighbour), all
			// cut from one array: one allocation instead of one per header.
			vals := make([]string, 0, 5+nIdentity)
			set := func(k, v string) {
				vals = append(vals, v)
				out[k] = vals[len(vals)-1 : len(vals) : len(vals)]
			}
			if info.clientIP.IsValid() {
				set(headers.ForwardedFor, info.clientIP.String())
			}
			set(headers.ForwardedProto, info.scheme)
			if info.host != "" {
				set(headers.ForwardedHost, info.host)
			}
			set(headers.RequestID, httpx.RequestIDFrom(pr.In.Context()))
			if kind == toAuthsvc || kind == toOpen {
				return
			}
			headers.DeleteAnyCase(out, headers.Authorization)
			headers.RemoveCookies(out, s.cookieNames)
			if kind == toBackend {
				setIdentity(x, set)
			}
		},
		ModifyResponse: secureResponse(kind),
		BufferPool:     copyBuffers,
		Transport:      timedTransport{next: s.transportFor(target, p.timeout), series: s.m.upstreamSeries(name)},
		ErrorLog:       zap.NewStdLog(s.log.With(zap.String("upstream", name))),
		ErrorHandler:   s.upstreamError(name),
	}
}

// errBadBody answers a request whose body could not be read to its end.
var errBadBody = httpx.Errorf(http.StatusBadRequest, "INVALID_BODY", "The request body ended before its declared length or is malformed.")

// trackedBody notes an error reading the client's body, so the
// error handler can tell a broken request from a broken upstream.
type trackedBody struct {
	io.ReadCloser
	x *exchange
}

func (b trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.x.bodyErr.Store(true)
	}
	return n, err
}

// copyBuffers recycles ReverseProxy's response-copy buffers: without
// a pool every proxied response allocates one (about 4% of the proxy's CPU
// under load went to those large allocations and their GC).
var copyBuffers httputil.BufferPool = &bufferPool{}

type bufferPool struct{ p sync.Pool } // of *[copyBufferSize]byte

// copyBufferSize is 16 KiB, not ReverseProxy's own 32 KiB: every response
// in flight holds one, and at 2,000 connections the 32 KiB buffers alone
// were ~60 MiB of live heap (peak RSS 1.11–1.19× a bare proxy's; with 16 KiB
// 0.98–1.06×, gatebench hs256-2k / bare-2k). A body larger than 16 KiB
// costs one more read and write per 16 KiB; API answers rarely are.
const copyBufferSize = 16 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

// Put keeps buffers by array pointer: converting the slice back costs no
// allocation, where boxing a *[]byte for the pool would cost one per Put.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return
	}
	b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}

// upstreamError answers a failed forward: 504 when the upstream was too slow,
// 502 when it could not be reached or broke the connection.
func (s *server) upstreamError(name string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		// First: the client's own body broke mid-forward (it sent less than
		// it promised and half-closed, which also cancels its context). A
		// 400, and nothing counted against the upstream.
		if exchangeFrom(r.Context()).bodyErr.Load() {
			httpx.LogFrom(r.Context()).Info("request body ended early", zap.String("upstream", name), zap.Error(err))
			httpx.WriteError(w, r, errBadBody)
			return
		}
		if r.Context().Err() != nil && !errors.Is(r.Context().Err(), context.DeadlineExceeded) {
			// The client went away; nobody reads this answer.
			httpx.LogFrom(r.Context()).Debug("client gone before upstream answered", zap.String("upstream", name))
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		he := errBadGateway
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			he = errGatewayTimeout
		}
		httpx.LogFrom(r.Context()).Warn("upstream failed", zap.String("upstream", name), zap.Int("status", he.Status), zap.Error(err))
		httpx.WriteError(w, r, he)
	}
}
