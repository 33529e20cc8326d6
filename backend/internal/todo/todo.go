// Package todo is the user-scoped todo store. The root Store has no query
// methods: callers must ask for a UserStore for one user, and every query a
// UserStore builds is filtered by that user, so an unscoped query cannot be
// written by accident outside this package.
package todo

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/uptrace/bun"

	"gatehouse.dev/kit/wire"
)

// UserID identifies the owner of a todo. Only ParseUserID makes one, so
// every view of the store was scoped by a checked id: ForUser("alice") does
// not compile. The zero value is never a valid user.
type UserID struct{ id string }

// IsZero reports whether u is the zero (invalid) user.
func (u UserID) IsZero() bool { return u.id == "" }

// String returns the id as the proxy sent it.
func (u UserID) String() string { return u.id }

// ErrInvalidUserID is returned by ParseUserID.
var ErrInvalidUserID = errors.New("todo: user id must be 1-128 printable ASCII characters without spaces or commas")

// ParseUserID checks the proxy's X-User-ID value by the rule the proxy
// applies to a token's sub (wire.ValidUserID).
func ParseUserID(s string) (UserID, error) {
	if !wire.ValidUserID(s) {
		return UserID{}, ErrInvalidUserID
	}
	return UserID{s}, nil
}

// ErrNotFound is returned for a missing todo and for another user's todo
// alike, so an ID tells nobody whether it exists.
var ErrNotFound = errors.New("todo: not found")

// MaxTitle is the longest title, in characters.
const MaxTitle = 500

// TitleError says why a title is invalid; its message is safe for clients.
type TitleError struct{ Reason string }

func (e *TitleError) Error() string { return e.Reason }

// CleanTitle trims s and checks it is 1–500 characters of valid UTF-8.
func CleanTitle(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &TitleError{"title must be valid UTF-8"}
	}
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", &TitleError{"title must not be empty"}
	case n > MaxTitle:
		return "", &TitleError{"title must be at most 500 characters"}
	}
	if strings.ContainsRune(s, 0) {
		return "", &TitleError{"title must not contain NUL characters"}
	}
	return s, nil
}

// Todo is one item. JSON times are RFC 3339 UTC with milliseconds.
type Todo struct {
	bun.BaseModel `bun:"table:todos,alias:t"`

	ID        int64     `bun:"id,pk,autoincrement"`
	UserID    string    `bun:"user_id,notnull"` // the owner, as stored
	Title     string    `bun:"title,notnull"`
	Completed bool      `bun:"completed,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull,default:now()"`
	UpdatedAt time.Time `bun:"updated_at,notnull,default:now()"`
}

// TimeFormat is RFC 3339 with exactly three fractional digits.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes the wire form of a todo (AppendJSON).
func (t Todo) MarshalJSON() ([]byte, error) { return t.AppendJSON(nil), nil }

// AppendJSON appends the wire form of t to dst: {"id", "title",
// "completed", "user_id", "created_at", "updated_at"}, times in TimeFormat
// (UTC). It is written out by hand because the list endpoint encodes up to
// 100 todos per request, and encoding/json spent most of the backend's CPU
// on them (reflection, then re-validating each MarshalJSON result);
// jsontext.AppendQuote (the json/v2 reference implementation) does the
// string escaping. TestAppendJSON checks it against encoding/json.
func (t Todo) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, t.ID, 10)
	dst = append(dst, `,"title":`...)
	dst = appendString(dst, t.Title)
	dst = append(dst, `,"completed":`...)
	dst = strconv.AppendBool(dst, t.Completed)
	dst = append(dst, `,"user_id":`...)
	dst = appendString(dst, t.UserID)
	dst = append(dst, `,"created_at":"`...)
	dst = AppendTime(dst, t.CreatedAt)
	dst = append(dst, `","updated_at":"`...)
	dst = AppendTime(dst, t.UpdatedAt)
	return append(dst, `"}`...)
}

// AppendTime appends t in UTC in TimeFormat. AppendFormat has a fast path
// for time.RFC3339 only; any other layout is parsed chunk by chunk on every
// call, and a page of todos formats two times per todo. So: RFC 3339
// without fraction, then the milliseconds put in before its Z.
// TestAppendTime compares it with AppendFormat(TimeFormat).
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst = t.AppendFormat(dst, time.RFC3339) // ends in "Z": UTC
	ms := t.Nanosecond() / 1e6
	return append(dst[:len(dst)-1], '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// AppendJSONList appends todos as a JSON array.
func AppendJSONList(dst []byte, todos []Todo) []byte {
	dst = append(dst, '[')
	for i := range todos {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = todos[i].AppendJSON(dst)
	}
	return append(dst, ']')
}

// appendString appends s as a JSON string. Invalid UTF-8 (which CleanTitle
// and ParseUserID keep out of the table) comes out as U+FFFD, as
// encoding/json writes it, never as invalid output: AppendQuote replaces it
// and reports an error we have nothing to do with.
func appendString(dst []byte, s string) []byte {
	out, _ := jsontext.AppendQuote(dst, s)
	return out
}
