// Package httpx is the HTTP plumbing every Gatehouse service shares: JSON error
// bodies in the shape docs/README.md gives, request IDs, the access log, panic recovery,
// Prometheus metrics, and a server lifecycle with readiness and draining.
package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// Error is an error a client may see: an HTTP status, an UPPER_SNAKE_CASE code
// and a sentence for humans. Its Message must never carry secrets.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when positive, is sent as Retry-After seconds.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf is a shorthand for &Error{Status, Code, Message}.
func Errorf(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Common errors shared by services.
var (
	ErrNotFound         = Errorf(http.StatusNotFound, "NOT_FOUND", "No such route.")
	ErrMethodNotAllowed = Errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed on this route.")
	ErrInternal         = Errorf(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal server error.")
	ErrUnavailable      = Errorf(http.StatusServiceUnavailable, "UNAVAILABLE", "A dependency is unavailable; try again shortly.")
)

// WriteError answers with err in the JSON error shape (docs/README.md). An *Error is sent as it
// is; any other error is logged with the request's logger and becomes a
// generic 500, so internal details never reach the client.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	if !errors.As(err, &he) {
		LogFrom(r.Context()).Error("internal error", zap.Error(err))
		he = ErrInternal
	}
	if he.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.RetryAfter))
	}
	WriteJSON(w, he.Status, he)
}

// WriteJSON encodes v as the response body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error."}`)
	}
	WriteRawJSON(w, status, append(b, '\n'))
}

// WriteRawJSON sends b, which must be JSON, as the response body with
// status. A body of 2 KiB or more gets an explicit Content-Length, so
// net/http writes it in one piece instead of chunked, and a reverse proxy in
// front copies it without flushing every write (httputil.ReverseProxy
// flushes each write of a response of unknown length); net/http adds the
// header itself to anything shorter, without the extra allocation.
func WriteRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if len(b) >= autoContentLength {
		h.Set("Content-Length", strconv.Itoa(len(b)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// autoContentLength is net/http's bufferBeforeChunkingSize: a handler that
// writes less than this in all and returns gets a Content-Length computed
// by the server.
const autoContentLength = 2048

// MethodNotAllowed answers a known path reached with the wrong method: a JSON
// 405 with Allow (ServeMux's own 405 is plain text). Register it on the
// method-less pattern beside the method-specific ones.
func MethodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		WriteError(w, r, ErrMethodNotAllowed)
	})
}

// NotFoundHandler answers every request with a JSON 404.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, ErrNotFound) })
}
