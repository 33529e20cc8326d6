package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"gatehouse.dev/kit/httpx"
)

// maxBody is the largest request body accepted (SPEC: over 64 KiB is 413).
const maxBody = 64 << 10

// optional is a JSON field that may be absent but, when present, must not be
// null: `"title": null` is a wrong type, not "leave unchanged".
type optional[T any] struct {
	Set bool
	Val T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return errNull
	}
	o.Set = true
	return json.Unmarshal(b, &o.Val)
}

var errNull = errors.New("null")

// decode reads one JSON object into v: JSON content type, at most maxBody
// bytes, valid UTF-8, no unknown fields, nothing after the object. Every
// failure is an *httpx.Error with a message safe to show.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return httpx.Errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpx.Errorf(http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "Request body must be at most 64 KiB.")
		}
		return httpx.Errorf(http.StatusBadRequest, "INVALID_BODY", "Could not read the request body.")
	}
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; refuse it
	// instead of storing something the client did not send.
	if !utf8.Valid(body) || hasLoneSurrogate(body) {
		return httpx.Errorf(http.StatusBadRequest, "INVALID_UTF8", "Request body must be valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return httpx.Errorf(http.StatusBadRequest, "INVALID_JSON", "Request body must hold a single JSON object.")
	}
	return nil
}

// jsonError turns a decoding error into a client-safe 400.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return httpx.Errorf(http.StatusBadRequest, "INVALID_JSON", "Request body is empty; want a JSON object.")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return httpx.Errorf(http.StatusBadRequest, "INVALID_JSON", "Request body is not valid JSON.")
	case errors.As(err, &te):
		if te.Field == "" {
			return httpx.Errorf(http.StatusBadRequest, "INVALID_JSON", "Request body must be a JSON object.")
		}
		return httpx.Errorf(http.StatusBadRequest, "INVALID_TYPE", fmt.Sprintf("Field %q must be a %s.", te.Field, jsonKind(te.Type.Kind().String())))
	case errors.Is(err, errNull):
		return httpx.Errorf(http.StatusBadRequest, "INVALID_TYPE", "Fields must not be null.")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return httpx.Errorf(http.StatusBadRequest, "UNKNOWN_FIELD", "Unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field ")+".")
	}
	return httpx.Errorf(http.StatusBadRequest, "INVALID_JSON", "Request body is not valid JSON.")
}

func jsonKind(k string) string {
	switch k {
	case "bool":
		return "boolean"
	case "string":
		return "string"
	case "int", "int64", "float64":
		return "number"
	}
	return k
}

// hasLoneSurrogate reports whether body has a \uD800–\uDFFF escape that is
// not half of a valid surrogate pair. encoding/json would turn it into
// U+FFFD, storing a character the client never sent. A backslash can only
// appear inside JSON strings, so a linear scan of escapes is exact.
func hasLoneSurrogate(body []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range body[i+2 : i+6] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // some other escape: skip the escaped character
			continue
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}
