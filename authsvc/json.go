package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/pgdb"
)

// maxBody bounds every request body.
const maxBody = 64 << 10

var (
	errTooLarge  = httpx.Errorf(http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "Request body is larger than 64 KiB.")
	errMediaType = httpx.Errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
		"Content-Type is not allowed. Allowed types: application/json")
	errBadJSON = httpx.Errorf(http.StatusBadRequest, "BAD_REQUEST", "Invalid JSON in request body")
)

// validationError is Better Auth's answer to a body that does not match an
// endpoint's schema (better-call's VALIDATION_ERROR).
func validationError(msg string) *httpx.Error {
	return httpx.Errorf(http.StatusBadRequest, "VALIDATION_ERROR", msg)
}

// decode reads a JSON body into T. An empty body yields the zero T when
// emptyOK (sign-out sends none); unknown fields are ignored, as Better Auth's
// schemas do, since its client may send extras such as callbackURL.
func decode[T any](w http.ResponseWriter, r *http.Request, emptyOK bool) (T, error) {
	var v T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return v, errTooLarge
		}
		return v, httpx.Errorf(http.StatusBadRequest, "BAD_REQUEST", "Could not read the request body.")
	}
	if len(bytes.TrimSpace(body)) == 0 && emptyOK {
		return v, nil
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return v, errMediaType
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := "body"
			if te.Field != "" {
				field += "." + te.Field
			}
			return v, validationError(fmt.Sprintf("[%s] Invalid input: expected %s, received %s", field, jsType(te.Type.Kind().String()), te.Value))
		}
		return v, errBadJSON
	}
	if dec.More() {
		return v, errBadJSON
	}
	return v, nil
}

func jsType(kind string) string {
	switch kind {
	case "ptr", "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	}
	return kind
}

// isJSON accepts application/json and application/*+json, as better-call does.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// fail answers with err. It is the one place that decides what a client
// learns: client errors pass through, an unreachable database or a full
// hashing queue is 503, anything else is a logged 500.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpx.Error
	switch {
	case errors.As(err, &he):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		he = httpx.ErrUnavailable // the client went away; nobody reads this
	case pgdb.Unavailable(err), errors.Is(err, context.DeadlineExceeded):
		httpx.LogFrom(r.Context()).Warn("dependency unavailable", zap.Error(err))
		he = &httpx.Error{Status: http.StatusServiceUnavailable, Code: httpx.ErrUnavailable.Code,
			Message: httpx.ErrUnavailable.Message, RetryAfter: 1}
	default:
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteError(w, r, he)
}

// jsonTime marshals as RFC 3339 UTC with exactly milliseconds, like
// JavaScript's Date.toJSON (2026-11-26T10:00:00.000Z).
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z") + `"`), nil
}
