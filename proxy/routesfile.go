package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/headers"
	"gatehouse.dev/proxy/internal/pathclass"
)

// routesFile is PROXY_ROUTES_FILE as written (docs/proxy-routes.md). Durations are strings so that a bad one is reported with the
// others instead of stopping the decoder.
type routesFile struct {
	Upstreams map[string]string `yaml:"upstreams"`
	Routes    []routeSpec       `yaml:"routes"`
	Identity  map[string]string `yaml:"identity"` // claim → header
	CORS      *corsSpec         `yaml:"cors"`
}

type routeSpec struct {
	Prefix    string `yaml:"prefix"`
	Upstream  string `yaml:"upstream"`
	Auth      string `yaml:"auth"`       // none | optional | required (default)
	RateLimit string `yaml:"rate_limit"` // auth | none (default)
	Timeout   string `yaml:"timeout"`    // default UPSTREAM_TIMEOUT
}

type corsSpec struct {
	Origins     []string `yaml:"origins"`
	Credentials bool     `yaml:"credentials"`
	MaxAge      string   `yaml:"max_age"`
}

// authMode is what a route asks of the token.
type authMode string

const (
	authRequired authMode = "required" // a valid token, else 401
	authOptional authMode = "optional" // no token: forwarded without identity; a bad one: 401
	authNone     authMode = "none"     // the token is not looked at, and passed on untouched
)

// rateClass is a route's rate limit.
type rateClass string

const (
	rateNone rateClass = "none"
	rateAuth rateClass = "auth" // AUTH_GENERAL_RATE_LIMIT, and AUTH_RATE_LIMIT on sign-in/up
)

// Limits on what a routes file may ask for.
const (
	maxRouteTimeout = 24 * time.Hour
	maxCORSMaxAge   = 24 * time.Hour
	maxRoutes       = 1000
)

// routeConfig is a routes file checked and resolved, ready to build a route
// table from. It has no handlers: checking has no side effects.
type routeConfig struct {
	routes   []routeEntry // longest prefix first
	identity []identityHeader
	cors     *corsConfig
}

type routeEntry struct {
	prefix   string
	upstream string // name in the file, also the upstream metric label
	target   *url.URL
	auth     authMode
	limit    rateClass
	timeout  time.Duration
}

// identityHeader maps one claim to one request header.
type identityHeader struct {
	claim  string
	header string // canonical form
}

type corsConfig struct {
	origins     []string // normalised
	credentials bool
	maxAge      time.Duration
}

var (
	upstreamNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	headerNameRE   = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
	claimNameRE    = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// reservedIdentityHeaders may not be the target of a claim: the proxy sets
// them itself, or they change how the request is read.
var reservedIdentityHeaders = map[string]bool{
	"x-user-id": true, "authorization": true, "cookie": true, "host": true, "connection": true,
	"content-length": true, "content-type": true, "transfer-encoding": true, "te": true,
	"upgrade": true, "trailer": true, "keep-alive": true, "proxy-authorization": true,
	"proxy-connection": true, "x-request-id": true, "forwarded": true, "expect": true,
}

// parseRoutesFile checks data (the file's bytes) and reports every problem at
// once, each naming where it is. upstreamTimeout is UPSTREAM_TIMEOUT, the
// default route timeout.
func parseRoutesFile(data []byte, upstreamTimeout time.Duration) (routeConfig, error) {
	var f routesFile
	var problems []string
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // an unknown key is a typo that would silently change meaning
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.As(err, &te):
			// Unknown keys, duplicate keys, wrong types: every one, with
			// its line. The rest of the file decoded and is checked below.
			problems = append(problems, te.Errors...)
		case errors.Is(err, io.EOF):
			problems = append(problems, "the file is empty")
		default:
			return routeConfig{}, fmt.Errorf("not valid YAML: %w", err)
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		problems = append(problems, "more than one YAML document: want exactly one")
	}
	c := routeConfig{}
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Upstreams, by name, sorted so that problems come out in a stable order.
	targets := map[string]*url.URL{}
	if len(f.Upstreams) == 0 {
		bad("upstreams: want at least one, like app: http://127.0.0.1:8081")
	}
	for _, name := range sortedKeys(f.Upstreams) {
		raw := f.Upstreams[name]
		if !upstreamNameRE.MatchString(name) {
			bad("upstreams: name %q: want 1-32 lower-case letters, digits, - or _", name)
		}
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.User != nil || u.Fragment != "" {
			bad("upstreams: %s: %q is not a base URL: want http(s)://host:port without path, query or credentials", name, raw)
			continue
		}
		u.Path = ""
		targets[name] = u
	}

	// Routes.
	if len(f.Routes) == 0 {
		bad("routes: want at least one route")
	}
	if len(f.Routes) > maxRoutes {
		bad("routes: %d routes: at most %d", len(f.Routes), maxRoutes)
	}
	seen := map[string]int{}
	for i, r := range f.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if r.Prefix != "" {
			where += fmt.Sprintf(" (prefix %q)", r.Prefix)
		}
		e := routeEntry{prefix: r.Prefix, upstream: r.Upstream, auth: authRequired, limit: rateNone, timeout: upstreamTimeout}
		switch {
		case r.Prefix == "":
			bad("%s: prefix is missing: want a path like /api/", where)
		case !prefixOK(r.Prefix):
			bad("%s: prefix must start with / and be a canonical path (no dot or empty segments, encoded / \\ . %% NUL, control characters, ? or #)", where)
		default:
			if j, dup := seen[r.Prefix]; dup {
				bad("%s: duplicate prefix: also routes[%d]", where, j)
			} else {
				seen[r.Prefix] = i
			}
		}
		switch {
		case r.Upstream == "":
			bad("%s: upstream is missing: want one of the names under upstreams", where)
		case !hasKey(f.Upstreams, r.Upstream):
			bad("%s: unknown upstream %q: want one of %s", where, r.Upstream, strings.Join(sortedKeys(f.Upstreams), ", "))
		default:
			e.target = targets[r.Upstream]
		}
		switch authMode(r.Auth) {
		case "":
		case authNone, authOptional, authRequired:
			e.auth = authMode(r.Auth)
		default:
			bad("%s: auth %q: want none, optional or required", where, r.Auth)
		}
		switch rateClass(r.RateLimit) {
		case "":
		case rateNone, rateAuth:
			e.limit = rateClass(r.RateLimit)
		default:
			bad("%s: rate_limit %q: want auth or none", where, r.RateLimit)
		}
		if r.Timeout != "" {
			d, err := time.ParseDuration(r.Timeout)
			if err != nil || d <= 0 || d > maxRouteTimeout {
				bad("%s: timeout %q: want a positive duration up to 24h, like 30s or 1h", where, r.Timeout)
			} else {
				e.timeout = d
			}
		}
		c.routes = append(c.routes, e)
	}
	// Longest prefix first: the first match is the longest.
	slices.SortStableFunc(c.routes, func(a, b routeEntry) int { return len(b.prefix) - len(a.prefix) })

	// Identity: claim → header, in claim order.
	headersSeen := map[string]string{}
	for _, claim := range sortedKeys(f.Identity) {
		h := f.Identity[claim]
		where := fmt.Sprintf("identity: %s", claim)
		if !claimNameRE.MatchString(claim) {
			bad("identity: claim %q: want 1-128 printable ASCII characters", claim)
			continue
		}
		if !headerNameRE.MatchString(h) {
			bad("%s: header %q: want a header name like X-User-Email", where, h)
			continue
		}
		low := strings.ToLower(strings.ReplaceAll(h, "_", "-"))
		if reservedIdentityHeaders[low] || strings.HasPrefix(low, "x-forwarded-") || strings.HasPrefix(low, "content-") ||
			strings.HasPrefix(low, "sec-") || strings.HasPrefix(low, "access-control-") {
			bad("%s: header %s is set by the proxy or changes how a request is read; pick another, like X-User-Email", where, h)
			continue
		}
		if other, dup := headersSeen[low]; dup {
			bad("%s: header %s is also the header of claim %s", where, h, other)
			continue
		}
		headersSeen[low] = claim
		c.identity = append(c.identity, identityHeader{claim: claim, header: http.CanonicalHeaderKey(h)})
	}

	// CORS.
	if f.CORS != nil {
		cc := &corsConfig{credentials: f.CORS.Credentials, maxAge: 10 * time.Minute}
		if len(f.CORS.Origins) == 0 {
			bad("cors: origins: want at least one origin like https://app.example.com")
		}
		for _, o := range f.CORS.Origins {
			n, ok := wire.ParseOrigin(o)
			if !ok {
				bad("cors: origins: %q: want an origin like https://app.example.com (no *, path or query)", o)
				continue
			}
			cc.origins = append(cc.origins, n)
		}
		if f.CORS.MaxAge != "" {
			d, err := time.ParseDuration(f.CORS.MaxAge)
			if err != nil || d < 0 || d > maxCORSMaxAge {
				bad("cors: max_age %q: want a duration from 0s to 24h, like 10m", f.CORS.MaxAge)
			} else {
				cc.maxAge = d
			}
		}
		c.cors = cc
	}

	if len(problems) > 0 {
		return routeConfig{}, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

// prefixOK reports whether p is a path the proxy's own path checks would
// let through (so the prefix can match something), without query or
// fragment.
func prefixOK(p string) bool {
	if strings.ContainsAny(p, "?#") {
		return false
	}
	u, err := url.Parse(p)
	if err != nil {
		return false
	}
	return pathclass.Check(u) == nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stripSet are identity headers, normalised as headers.Spoofable reads
// names, that every inbound request loses on every route.
func (c routeConfig) stripSet() map[string]bool {
	s := map[string]bool{}
	for _, ih := range c.identity {
		s[headers.Normalise(ih.header)] = true
	}
	return s
}
