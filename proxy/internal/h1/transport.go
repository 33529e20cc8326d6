// Package h1 is a connection pool for plain-HTTP upstreams that runs a
// request on the calling goroutine: it writes the request, reads the
// response on the same connection and takes the connection back once the
// response body has been read to its end.
//
// Why not only net/http's Transport: it gives every connection a reader and
// a writer goroutine, so each proxied request is handed between goroutines
// four times, and on a small machine those wake-ups cost the proxy more CPU
// than reading and writing the bytes (gatebench's bare rows measure both).
// The wire format stays net/http's: Request.Write writes the request exactly
// as Transport does, and ReadResponse parses the answer (content length,
// chunked bodies, trailers, HEAD, 1xx). This package owns only the
// connections. It takes requests with no body or a small one of declared
// length, which it reads whole before it takes a connection (a slow client
// never holds an upstream connection, and the request goes out at once);
// everything else — a body of unknown or larger size, Expect: 100-continue,
// an upgrade, https, CONNECT — goes to Fallback, which writes a body while
// it reads the answer, and so keeps Transport's handling of early answers to
// long uploads and of protocol switches.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Transport is an http.RoundTripper. The zero value is not usable: Fallback
// is required. Its fields must not change once it is in use.
type Transport struct {
	// Fallback carries every request RoundTrip does not run itself.
	Fallback http.RoundTripper

	// Dial opens a connection; nil uses a net.Dialer with a 5 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// ResponseHeaderTimeout bounds the time from the end of the request
	// (a slow client's upload does not count) to the end of the response
	// header; zero means no limit. The response body may take longer (a
	// stream has no end).
	ResponseHeaderTimeout time.Duration

	// IdleConnTimeout closes a kept-alive connection idle for longer; zero
	// means 90 s.
	IdleConnTimeout time.Duration

	// MaxIdleConns bounds the kept-alive connections per address; zero
	// means 512.
	MaxIdleConns int

	// MaxResponseHeaderBytes bounds the response header, 1xx responses
	// included; zero means 1 MiB.
	MaxResponseHeaderBytes int64

	mu    sync.Mutex
	idle  map[string][]*conn // per address; the newest last
	sweep *time.Timer        // closes expired idle connections; nil while none are idle
}

// MaxBody is the largest request body RoundTrip takes. It is held in
// memory for the length of one request, so it is small: an API call's JSON,
// not an upload.
const MaxBody = 16 << 10

// takes reports whether RoundTrip runs r itself: plain HTTP, no body or one
// of declared length up to MaxBody, no upgrade or Expect, and header fields
// net/http would send. A request with an invalid field goes to Fallback,
// which refuses it with Transport's own error.
func takes(r *http.Request) bool {
	if r.URL == nil || r.URL.Scheme != "http" || r.URL.Host == "" ||
		r.Method == http.MethodConnect || len(r.TransferEncoding) != 0 || r.Close {
		return false
	}
	if r.Body == nil || r.Body == http.NoBody {
		if r.ContentLength != 0 {
			return false
		}
	} else if r.ContentLength <= 0 || r.ContentLength > MaxBody {
		return false
	}
	if _, ok := r.Header["Upgrade"]; ok {
		return false
	}
	if _, ok := r.Header["Expect"]; ok {
		return false
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !takes(r) {
		return t.Fallback.RoundTrip(r)
	}
	ctx := r.Context()
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		// Read the client's body before taking a connection. An error
		// here is the client's (the proxy's body wrapper notes it).
		body = make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, body)
		r.Body.Close() // a RoundTripper always closes the body
		if err != nil {
			return nil, err
		}
	}
	addr := r.URL.Host
	if r.URL.Port() == "" {
		addr = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	for retried := false; ; retried = true {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		c, reused, err := t.conn(ctx, addr)
		if err != nil {
			return nil, err
		}
		out := r
		if body != nil {
			out = r.WithContext(ctx) // a shallow copy, to carry the body read above
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := c.roundTrip(out)
		if err == nil {
			return resp, nil
		}
		// A kept-alive connection the upstream closed just as it was
		// taken fails before any byte of an answer arrives. A request
		// that may be repeated is sent again, once, on a new connection
		// (RFC 9110 section 9.2.2, and what Transport does); a timeout or
		// a partial answer is not retried.
		var ne net.Error
		if !replayable(r) || !reused || retried || c.got > 0 || ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, err
		}
	}
}

// replayable reports whether r may be sent twice: an idempotent method
// without side effects, or a request carrying an idempotency key, as
// net/http's Transport decides.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// CloseIdleConnections closes the kept-alive connections, and Fallback's.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.nc.Close()
		}
	}
	if ci, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// conn returns a kept-alive connection to addr that is still open and has
// sent nothing unasked, or a new one.
func (t *Transport) conn(ctx context.Context, addr string) (c *conn, reused bool, err error) {
	for {
		c = t.take(addr)
		if c == nil {
			break
		}
		if quiet(c.nc) {
			return c, true, nil
		}
		// Closed by the upstream, or bytes nobody asked for: a response
		// read from it now could be an answer to someone else's request.
		c.nc.Close()
	}
	dial := t.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c = &conn{t: t, addr: addr, nc: nc, peekable: canPeek(nc)}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, false, nil
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return 90 * time.Second
}

// take pops the newest idle connection to addr. When even that one has
// been idle too long, so have all the others, and they are closed.
func (t *Transport) take(addr string) *conn {
	t.mu.Lock()
	cs := t.idle[addr]
	if len(cs) == 0 {
		t.mu.Unlock()
		return nil
	}
	c := cs[len(cs)-1]
	if time.Since(c.idleSince) > t.idleTimeout() {
		delete(t.idle, addr)
		t.mu.Unlock()
		for _, c := range cs {
			c.nc.Close()
		}
		return nil
	}
	cs[len(cs)-1] = nil
	t.idle[addr] = cs[:len(cs)-1]
	t.mu.Unlock()
	return c
}

// put keeps c for the next request, closing it instead when the pool is
// full. sweepIdle closes the ones idle too long (under light load only the
// newest are ever taken).
func (t *Transport) put(c *conn) {
	c.idleSince = time.Now()
	max := t.MaxIdleConns
	if max <= 0 {
		max = 512
	}
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	full := len(t.idle[c.addr]) >= max
	if !full {
		t.idle[c.addr] = append(t.idle[c.addr], c)
	}
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout(), t.sweepIdle)
	}
	t.mu.Unlock()
	if full {
		c.nc.Close()
	}
}

// sweepIdle closes the connections idle for longer than IdleConnTimeout,
// and runs again while any are left: a pool nobody uses any more (an
// upstream gone quiet, or dropped by a routes reload) lets its connections
// go like net/http's Transport does.
func (t *Transport) sweepIdle() {
	now := time.Now()
	var expired []*conn
	t.mu.Lock()
	left := 0
	for addr, cs := range t.idle {
		for len(cs) > 0 && now.Sub(cs[0].idleSince) > t.idleTimeout() {
			expired = append(expired, cs[0])
			cs[0] = nil
			cs = cs[1:]
		}
		if len(cs) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = cs
		}
		left += len(cs)
	}
	if left > 0 {
		t.sweep.Reset(t.idleTimeout() / 2)
	} else {
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.nc.Close()
	}
}

// errHeaderTooLarge ends a response header longer than MaxResponseHeaderBytes.
var errHeaderTooLarge = errors.New("h1: response header too large")

// aLongTimeAgo is a deadline that has passed: setting it ends blocked reads
// and writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one connection to an upstream. Between put and take it belongs to
// the pool; otherwise to the one request using it, whose goroutine alone
// reads and writes it.
type conn struct {
	t         *Transport
	addr      string
	nc        net.Conn
	br        *bufio.Reader // reads through conn.Read
	bw        *bufio.Writer
	limit     int64 // bytes reads may still take: the header budget while one is read
	got       int64 // bytes read since the request was written
	idleSince time.Time

	peekable bool // quiet can see into it; one that cannot is never kept

	ctx      context.Context // the request's, while c serves one
	mu       sync.Mutex      // orders cancel against the deadline changes
	canceled bool            // the request's context ended; the deadline is in the past
	stop     func() bool
}

// ended reports whether the request's context ended, and so caused err.
func (c *conn) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.canceled
}

// Read counts what the response has delivered and enforces the header budget.
func (c *conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.nc.Read(p)
	c.got += int64(n)
	c.limit -= int64(n)
	return n, err
}

// cancel runs when the request's context ends: it fails any read or write
// in progress, and the connection is closed rather than kept.
func (c *conn) cancel() {
	c.mu.Lock()
	c.canceled = true
	c.nc.SetDeadline(aLongTimeAgo)
	c.mu.Unlock()
}

// setDeadline sets d unless the request was canceled, whose past deadline
// must stay.
func (c *conn) setDeadline(d time.Time) {
	c.mu.Lock()
	if !c.canceled {
		c.nc.SetDeadline(d)
	}
	c.mu.Unlock()
}

// roundTrip writes r and reads the response header. On an error c is
// closed.
func (c *conn) roundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	c.ctx = ctx
	c.got = 0
	c.canceled = false
	c.stop = context.AfterFunc(ctx, c.cancel)
	resp, err := c.exchange(r)
	if err != nil {
		c.nc.Close()
		if !c.stop() {
			// The context ended: say so, not "i/o timeout".
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	if c.t.ResponseHeaderTimeout > 0 {
		c.setDeadline(time.Time{})
	}
	if resp.Body == http.NoBody {
		c.release(resp.Close)
		return resp, nil
	}
	resp.Body = &body{rc: resp.Body, c: c, keep: !resp.Close}
	return resp, nil
}

// exchange writes r and reads its answer.
func (c *conn) exchange(r *http.Request) (*http.Response, error) {
	werr := r.Write(c.bw) // closes r.Body
	if werr == nil {
		werr = c.bw.Flush()
	}
	timeout := c.t.ResponseHeaderTimeout
	if werr != nil {
		// An upstream may answer before it has read the whole request,
		// and close (RFC 9112 section 9.6): pass that answer on if it
		// came, rather than a 502 for the failed write.
		if c.ended() {
			return nil, werr
		}
		if timeout <= 0 || timeout > earlyAnswerWait {
			timeout = earlyAnswerWait
		}
	}
	if timeout > 0 {
		c.setDeadline(time.Now().Add(timeout))
	}
	resp, err := c.readResponse(r)
	if werr != nil {
		if err != nil {
			return nil, werr
		}
		resp.Close = true // the request was cut short: never reuse
	}
	return resp, err
}

// earlyAnswerWait is how long a failed write waits for an answer the
// upstream may have sent before closing.
const earlyAnswerWait = time.Second

// readResponse reads responses up to the final one, passing 1xx responses
// to the request's Got1xxResponse trace hook (ReverseProxy forwards them to
// its client).
func (c *conn) readResponse(r *http.Request) (*http.Response, error) {
	max := c.t.MaxResponseHeaderBytes
	if max <= 0 {
		max = 1 << 20
	}
	c.limit = max // shared by any 1xx responses and the final header
	for {
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code > 199 {
			c.limit = math.MaxInt64
			return resp, nil
		}
		if code == http.StatusSwitchingProtocols {
			// Only Fallback sends an upgrade.
			return nil, errors.New("h1: upstream switched protocols unasked")
		}
		if trace := httptrace.ContextClientTrace(r.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// release ends c's part in a request: back to the pool when the response
// allows it, nothing unread is buffered, the context did not end and the
// pool can peek at it before reuse; closed otherwise.
func (c *conn) release(close bool) {
	c.ctx = nil
	if !c.stop() || close || c.br.Buffered() > 0 || !c.peekable {
		c.nc.Close()
		return
	}
	c.t.put(c)
}

// discard ends c's part in a request whose body was not read to its end.
func (c *conn) discard() {
	c.stop()
	c.nc.Close()
}

// body hands the connection back when the response body has been read to
// its end, and closes it when the reader stops early. Close may run while a
// Read is blocked (it ends that Read), as on net/http's response bodies.
type body struct {
	rc   io.ReadCloser
	c    *conn
	keep bool

	mu   sync.Mutex
	done bool  // c is no longer this body's: never touch rc again
	err  error // what Read returns once done
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return 0, b.err
	}
	b.mu.Unlock()
	n, err := b.rc.Read(p) // only this goroutine reads; Close only closes the socket
	if err == nil {
		return n, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.done: // closed while reading
		return n, b.err
	case err == io.EOF:
		b.done, b.err = true, io.EOF
		b.c.release(!b.keep)
	default:
		if b.c.ended() {
			// The client went away: say so, not "i/o timeout"
			// (ReverseProxy stays quiet about a canceled copy).
			err = context.Cause(b.c.ctx)
		}
		b.done, b.err = true, err
		b.c.discard()
	}
	return n, err
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done, b.err = true, http.ErrBodyReadAfterClose
		b.c.discard()
	}
	return nil
}
