// Package envconf reads environment variables into typed values and collects
// every problem, so a service can report all of its configuration errors at
// once. Reading has no side effects, and a secret's value never appears in an
// error message.
package envconf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// Reader reads variables through Getenv. The zero value is not usable: set
// Getenv (os.Getenv in production, a map lookup in tests).
type Reader struct {
	Getenv func(string) string
	// LookupEnv, when set, lets Disableable tell a variable set to "" from
	// an unset one.
	LookupEnv func(string) (string, bool)
	errs      []error
}

// New returns a Reader over getenv.
func New(getenv func(string) string) *Reader { return &Reader{Getenv: getenv} }

// FromLookup returns a Reader over lookup (os.LookupEnv in production), so
// that "set but empty" can mean "disabled".
func FromLookup(lookup func(string) (string, bool)) *Reader {
	return &Reader{LookupEnv: lookup, Getenv: func(k string) string { v, _ := lookup(k); return v }}
}

// Disableable returns def when key is unset and "" when it is set to the
// empty string (SPEC: "empty disables"), else its value.
func (r *Reader) Disableable(key, def string) string {
	if r.LookupEnv != nil {
		if v, ok := r.LookupEnv(key); ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	return r.Str(key, def)
}

// Lookup returns the value of key and whether it is non-empty.
func (r *Reader) Lookup(key string) (string, bool) {
	v := strings.TrimSpace(r.Getenv(key))
	return v, v != ""
}

// Fail records a problem with key; want says what form is expected.
func (r *Reader) Fail(key, want string) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", key, want))
}

// Plain returns key's value exactly as set (a password keeps its spaces).
func (r *Reader) Plain(key string) string { return r.Getenv(key) }

// Str returns key's value, or def when it is unset or empty.
func (r *Reader) Str(key, def string) string {
	if v, ok := r.Lookup(key); ok {
		return v
	}
	return def
}

// OneOf returns key's value, or def when it is unset or empty, and records
// an error unless the value is one of allowed.
func (r *Reader) OneOf(key, def string, allowed ...string) string {
	v := r.Str(key, def)
	if !slices.Contains(allowed, v) {
		r.Fail(key, fmt.Sprintf("%q: want one of %s", v, strings.Join(allowed, ", ")))
		return def
	}
	return v
}

// Addr returns key's value, or def when it is unset or empty, and records
// an error unless it is a listen address: host:port with a numeric port
// from 0 to 65535 (an empty host listens on every interface).
func (r *Reader) Addr(key, def string) string {
	return r.checkAddr(key, r.Str(key, def), def)
}

// DisableableAddr is Addr for a listener that "" disables (see
// Disableable): it returns "" when key is set to the empty string.
func (r *Reader) DisableableAddr(key, def string) string {
	v := r.Disableable(key, def)
	if v == "" {
		return ""
	}
	return r.checkAddr(key, v, def)
}

func (r *Reader) checkAddr(key, v, def string) string {
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		r.Fail(key, fmt.Sprintf("%q: want host:port with a port from 0 to 65535", v))
		return def
	}
	return v
}

// LogLevel returns key's value, or def when it is unset or empty, and
// records an error unless it is a level kit/logging accepts (debug, info,
// warn, error), so a typo is reported with every other problem rather than
// after the rest of the configuration was accepted.
func (r *Reader) LogLevel(key, def string) string {
	v := r.Str(key, def)
	if _, err := zapcore.ParseLevel(v); err != nil {
		r.Fail(key, fmt.Sprintf("%q: want debug, info, warn or error", v))
		return def
	}
	return v
}

// Secret returns key's raw value (untrimmed, so that whitespace in a secret
// counts). When min > 0 and the value is shorter, it records an error that
// names the length, never the value. required says whether an empty value is an
// error.
func (r *Reader) Secret(key string, min int, required bool) string {
	v := r.Getenv(key)
	switch {
	case v == "" && required:
		r.Fail(key, fmt.Sprintf("required but not set: want a random secret of at least %d bytes", min))
	case v != "" && len(v) < min:
		r.Fail(key, fmt.Sprintf("too short (%d bytes): want at least %d bytes", len(v), min))
	}
	return v
}

// Duration parses key as a Go duration (e.g. 15s); it must be positive.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := r.Lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.Fail(key, fmt.Sprintf("%q: want a positive duration like 15s", v))
		return def
	}
	return d
}

// NonNegDuration is Duration but also accepts 0 (e.g. "no drain delay").
func (r *Reader) NonNegDuration(key string, def time.Duration) time.Duration {
	v, ok := r.Lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.Fail(key, fmt.Sprintf("%q: want a duration like 5s, or 0", v))
		return def
	}
	return d
}

// Int parses key as an integer in [min, max].
func (r *Reader) Int(key string, def, min, max int) int {
	v, ok := r.Lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.Fail(key, fmt.Sprintf("%q: want an integer from %d to %d", v, min, max))
		return def
	}
	return n
}

// URL parses key as an absolute URL with one of the given schemes. An unset
// key yields def (which may be empty). The error never prints the URL, since a
// database URL may carry a password.
func (r *Reader) URL(key, def string, schemes ...string) string {
	v, ok := r.Lookup(key)
	if !ok {
		v = def
	}
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || !contains(schemes, u.Scheme) {
		r.Fail(key, fmt.Sprintf("not a valid URL: want %s://host[:port]/...", strings.Join(schemes, "|")))
		return ""
	}
	return v
}

// Err returns every recorded problem joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
