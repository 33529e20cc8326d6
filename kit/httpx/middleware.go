package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/wire"
)

// HeaderRequestID is the request ID header, taken from the caller when well
// formed and generated otherwise.
const HeaderRequestID = "X-Request-Id"

type ctxKey int

const stateKey ctxKey = 0

// reqState is everything Observe knows about one request, stored in its
// context once. The request's child logger is built only when something
// logs through LogFrom, so a request that logs nothing but its access line
// allocates no logger (the proxy's hot path).
type reqState struct {
	base   *zap.Logger
	rid    string
	mu     sync.Mutex
	fields []zap.Field
	child  *zap.Logger // base + request_id + fields; nil until needed
	route  string      // SetRoute's label; "" means r.Pattern

	// Allocated with the state rather than on their own: the status
	// writer, and room for the few fields a service adds (route, user).
	sw      statusWriter
	fieldsA [4]zap.Field
	ridVal  [1]string // the request ID header's value, shared by r and w
}

func (st *reqState) logger() *zap.Logger {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.child == nil {
		st.child = st.base.With(append([]zap.Field{zap.String("request_id", st.rid)}, st.fields...)...)
	}
	return st.child
}

// LogFrom returns the request's logger, carrying request_id and every field
// added with AddLogFields; never nil (a no-op logger outside a request).
func LogFrom(ctx context.Context) *zap.Logger {
	if st, ok := ctx.Value(stateKey).(*reqState); ok {
		return st.logger()
	}
	return zap.NewNop()
}

// RequestIDFrom returns the request ID set by Observe, or "".
func RequestIDFrom(ctx context.Context) string {
	if st, ok := ctx.Value(stateKey).(*reqState); ok {
		return st.rid
	}
	return ""
}

// SetRoute names the request's route for its access-log line ("route") and
// its metrics label, in place of r.Pattern, for a handler that routes
// without ServeMux patterns (the proxy routes by path class). label must
// come from a closed set, since it is a metric label. Outside Observe it
// does nothing.
func SetRoute(ctx context.Context, label string) {
	if st, ok := ctx.Value(stateKey).(*reqState); ok {
		st.mu.Lock()
		st.route = label
		st.mu.Unlock()
	}
}

// AddLogFields attaches fields (a user ID, a route class) to the request's
// access-log line and to later LogFrom loggers. It returns ctx, unchanged,
// for call sites written as ctx = AddLogFields(ctx, ...).
func AddLogFields(ctx context.Context, fields ...zap.Field) context.Context {
	if st, ok := ctx.Value(stateKey).(*reqState); ok {
		st.mu.Lock()
		st.fields = append(st.fields, fields...)
		st.child = nil
		st.mu.Unlock()
	}
	return ctx
}

// ValidRequestID reports whether s is an acceptable inbound request ID: 1–128
// characters of [A-Za-z0-9._:-]. Anything else is replaced, so a client cannot
// inject into logs.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns 128 random bits in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status and size written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Observe wraps next with request IDs, the access log, panic recovery and
// metrics, in that order from the outside in. It is the one middleware stack
// every service uses. m may be nil (no metrics).
func Observe(log *zap.Logger, m *Metrics, next http.Handler) http.Handler {
	return ObserveWithContext(log, m, nil, next)
}

// ObserveWithContext is Observe for a service that keeps per-request state
// of its own: derive, when non-nil, returns the context next is served
// with, given the one Observe made (which carries the request ID, logger
// and route). A service puts its state there under its own typed key, in
// the one Request copy Observe makes anyway, instead of copying the
// Request again. derive must return a context derived from its argument.
func ObserveWithContext(log *zap.Logger, m *Metrics, derive func(context.Context) context.Context, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{base: log}
		st.fields = st.fieldsA[:0]
		rid := r.Header.Get(HeaderRequestID)
		if !ValidRequestID(rid) {
			rid = NewRequestID()
			st.ridVal[0] = rid
			r.Header[HeaderRequestID] = st.ridVal[:1:1]
		} else {
			st.ridVal[0] = rid
		}
		st.rid = rid
		// The same one-element, cap-1 slice as the request's: nothing
		// writes into a header value in place, and Add copies at cap 1.
		w.Header()[HeaderRequestID] = st.ridVal[:1:1]
		ctx := context.WithValue(r.Context(), stateKey, st)
		if derive != nil {
			ctx = derive(ctx)
		}
		r = r.WithContext(ctx)
		st.sw.ResponseWriter = w
		sw := &st.sw

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				st.logger().Error("panic", zap.Any("panic", p), zap.Stack("stack"))
				if sw.status == 0 {
					WriteError(sw, r, ErrInternal)
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			st.mu.Lock()
			defer st.mu.Unlock()
			route := st.route
			if route == "" {
				route = r.Pattern
			}
			if route == "" {
				route = "unmatched"
			}
			if m != nil {
				m.observe(route, r.Method, sw.status, d)
			}
			if ce := log.Check(zap.InfoLevel, "request"); ce != nil {
				fs := make([]zap.Field, 0, 7+len(st.fields)) // one allocation
				fs = append(fs,
					zap.String("request_id", rid),
					zap.String("method", MethodLabel(r.Method)),
					zap.String("path", boundedPath(r.URL.Path)),
					zap.String("route", route),
					zap.Int("status", sw.status),
					zap.Int64("bytes", sw.bytes),
					zap.Duration("latency", d),
				)
				ce.Write(append(fs, st.fields...)...)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// maxLoggedPath bounds the path in access logs: it comes from the client.
const maxLoggedPath = 512

func boundedPath(p string) string {
	p = wire.LoggablePath(p)
	if len(p) <= maxLoggedPath {
		return p
	}
	return p[:maxLoggedPath] + "…"
}
