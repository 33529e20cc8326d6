package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// HeaderRequestID is the request ID header, taken from the caller when well
// formed and generated otherwise.
const HeaderRequestID = "X-Request-Id"

type ctxKey int

const (
	loggerKey ctxKey = iota
	requestIDKey
	fieldsKey
)

// LogFrom returns the request's logger; never nil (a no-op logger outside a
// request).
func LogFrom(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(loggerKey).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

// WithLogger returns ctx carrying l, for LogFrom.
func WithLogger(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// RequestIDFrom returns the request ID set by RequestID, or "".
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// logFields collects fields that inner handlers learn (a user ID, a route
// class) so the outer access-log line can carry them.
type logFields struct {
	mu     sync.Mutex
	fields []zap.Field
}

// AddLogFields attaches fields to the request's access-log line and to its
// logger for later LogFrom calls made with the returned context.
func AddLogFields(ctx context.Context, fields ...zap.Field) context.Context {
	if lf, ok := ctx.Value(fieldsKey).(*logFields); ok {
		lf.mu.Lock()
		lf.fields = append(lf.fields, fields...)
		lf.mu.Unlock()
	}
	return WithLogger(ctx, LogFrom(ctx).With(fields...))
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get(HeaderRequestID)
		if !ValidRequestID(rid) {
			rid = NewRequestID()
			r.Header.Set(HeaderRequestID, rid)
		}
		w.Header().Set(HeaderRequestID, rid)
		lf := &logFields{}
		l := log.With(zap.String("request_id", rid))
		ctx := context.WithValue(r.Context(), requestIDKey, rid)
		ctx = context.WithValue(ctx, fieldsKey, lf)
		ctx = WithLogger(ctx, l)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				l.Error("panic", zap.Any("panic", p), zap.Stack("stack"))
				if sw.status == 0 {
					WriteError(sw, r, ErrInternal)
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			if m != nil {
				m.observe(route, r.Method, sw.status, d)
			}
			lf.mu.Lock()
			fields := append([]zap.Field{
				zap.String("method", r.Method),
				zap.String("path", r.URL.Path),
				zap.String("route", route),
				zap.Int("status", sw.status),
				zap.Int64("bytes", sw.bytes),
				zap.Duration("latency", d),
			}, lf.fields...)
			lf.mu.Unlock()
			l.Info("request", fields...)
		}()
		next.ServeHTTP(sw, r)
	})
}
