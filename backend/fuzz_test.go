package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/kit/httpx"
)

// FuzzDecodeTodo feeds request bodies to decode, as handleTodoCreate and
// handleTodoUpdate use it. decode must never panic, never accept invalid
// UTF-8, answer every refusal with a 4xx *httpx.Error, and agree with an
// independent reading of the body rules: one JSON object whose keys are
// title (a string) and completed (a boolean), matched in any letter case as
// encoding/json does, never null. Whatever it accepts, CleanTitle's verdict
// must match the title rules. An unpaired surrogate escape is refused: it
// would decode to a U+FFFD the client never sent.
func FuzzDecodeTodo(f *testing.F) {
	for _, s := range []string{
		`{"title":"milk"}`, `{"title":"milk","completed":true}`, `{"completed":false}`, `{}`,
		`{"title":null}`, `{"title":1}`, `{"TITLE":"x"}`, `{"title":"a","title":"b"}`, `{"title":"x","user_id":"other"}`,
		`{"title":"x"} {}`, `{"title":"x"}garbage`, `[]`, `null`, `"x"`, ``, `{"title":"\u0000"}`, "{\"title\":\"\xff\"}",
		`{"title":"\ud800"}`, `{"title":"\ud83d\ude00"}`, `{"title":"\ufffd"}`, `{"title":"` + strings.Repeat("é", 501) + `"}`,
		`{"title":"  padded  "}`, `{"completed":"true"}`, `{"title":"x","completed":null}`, `{"Completed":true,"title":"t"}`,
		"\ufeff{\"title\":\"bom\"}", `{"title":"x",}`, `{"title":"x"}` + strings.Repeat(" ", 100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, kind := range []string{"create", "patch"} {
			var err error
			var title optional[string]
			var completed optional[bool]
			switch kind {
			case "create":
				var in todoCreate
				err = decodeBody(body, &in)
				title, completed = in.Title, in.Completed
			case "patch":
				var in todoPatch
				err = decodeBody(body, &in)
				title, completed = in.Title, in.Completed
			}
			want, why := reference(body)
			if err != nil {
				var he *httpx.Error
				if !errors.As(err, &he) || he.Status < 400 || he.Status > 499 {
					t.Fatalf("%s %q: error %v is not a client error", kind, body, err)
				}
				if want {
					t.Fatalf("%s %q refused (%v), but the rules accept it", kind, body, err)
				}
				continue
			}
			if !want {
				t.Fatalf("%s %q accepted, but the rules refuse it: %s", kind, body, why)
			}
			if !utf8.Valid(body) {
				t.Fatalf("%s accepted invalid UTF-8 %q", kind, body)
			}
			_ = completed
			if title.Set {
				clean, cerr := todo.CleanTitle(title.Val)
				trimmed := strings.TrimSpace(title.Val)
				n := utf8.RuneCountInString(trimmed)
				ok := utf8.ValidString(title.Val) && n >= 1 && n <= todo.MaxTitle && !strings.ContainsRune(trimmed, 0)
				if (cerr == nil) != ok || (ok && clean != trimmed) {
					t.Fatalf("CleanTitle(%q) = %q, %v; rules say ok=%v", title.Val, clean, cerr, ok)
				}
			}
		}
	})
}

func decodeBody(body []byte, v any) error {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/todos", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return decode(httptest.NewRecorder(), r, v)
}

// reference decides from the SPEC's rules alone whether a body is acceptable.
// decodesToUnsentReplacementChar reports whether some string in body decodes
// to U+FFFD although the client sent none (neither the character nor its
// escape): encoding/json's rendering of an unpaired surrogate escape.
func decodesToUnsentReplacementChar(body []byte) bool {
	lower := strings.ToLower(string(body))
	if strings.ContainsRune(lower, utf8.RuneError) || strings.Contains(lower, `\ufffd`) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
			return true
		}
	}
}

func reference(body []byte) (bool, string) {
	if len(body) > maxBody {
		return false, "too large"
	}
	if !utf8.Valid(body) {
		return false, "invalid UTF-8"
	}
	if decodesToUnsentReplacementChar(body) {
		return false, "unpaired surrogate escape"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err == nil && tok == nil {
		// A bare null decodes as "no fields" (encoding/json leaves the
		// struct alone); both handlers then answer 400 (INVALID_TITLE,
		// EMPTY_PATCH), so it is accepted here too.
		_, err := dec.Token()
		return err == io.EOF, "trailing data"
	}
	if err != nil || tok != json.Delim('{') {
		return false, "not an object"
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return false, "bad key"
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return false, "bad value"
		}
		switch key, _ := k.(string); {
		case strings.EqualFold(key, "title"):
			var s string
			if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
				return false, "title is not a string"
			}
		case strings.EqualFold(key, "completed"):
			if string(raw) != "true" && string(raw) != "false" {
				return false, "completed is not a boolean"
			}
		default:
			return false, "unknown field " + key
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return false, "unterminated object"
	}
	if _, err := dec.Token(); err != io.EOF {
		return false, "trailing data"
	}
	return true, ""
}

// sentReplacementChar reports whether the body itself carries U+FFFD, raw
// or as the escape \ufffd.
func sentReplacementChar(body []byte) bool {
	return bytes.ContainsRune(body, utf8.RuneError) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
}

// encoding/json turns an unpaired UTF-16 surrogate escape ("\ud800") into
// U+FFFD without an error, so a title the client never sent would be stored;
// decode refuses raw invalid UTF-8 for that very reason (json.go) and must
// refuse this too. RFC 8259 §8.2 leaves such strings' meaning unpredictable.
func TestDecodeRefusesUnpairedSurrogate(t *testing.T) {
	for _, body := range []string{`{"title":"\ud800"}`, `{"title":"a\udfffb"}`, `{"title":"\ud83d x"}`} {
		var in todoCreate
		err := decodeBody([]byte(body), &in)
		if err == nil && strings.ContainsRune(in.Title.Val, utf8.RuneError) && !sentReplacementChar([]byte(body)) {
			t.Errorf("decode(%s) accepted; title %q holds U+FFFD the client did not send, want 400", body, in.Title.Val)
		}
	}
}
