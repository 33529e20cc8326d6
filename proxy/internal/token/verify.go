package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/kit/wire"
)

// Algorithms accepted. JWKS keys sign with the asymmetric ones; the shared
// secret only with HS256. Which key type each one needs is pinned in keyFor.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
	AlgHS256 = "HS256"
)

// forbiddenHeaders are JOSE header parameters that would let a token name its
// own key or key location (RFC 7515 §4.1.2–4.1.6) or demand extensions we do
// not implement (crit, §4.1.11). A token carrying any of them is rejected
// before any key lookup, so nothing is ever fetched on a token's say-so.
var forbiddenHeaders = []string{"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// minRSABits rejects toy RSA keys even if the JWKS publishes one.
const minRSABits = 2048

// Config configures a Verifier. At least one of Secret and JWKSURL must be set.
type Config struct {
	// Secret, when non-empty, verifies HS256 tokens. It should be 32+ bytes.
	Secret []byte
	// JWKSURL, when non-empty, is fetched for EdDSA/ES256/RS256/PS256 keys.
	JWKSURL string
	// Issuer and Audience, when non-empty, must match iss and aud.
	Issuer, Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// JWKS fetching and caching; zero values take the production defaults.
	JWKS JWKSConfig
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Revoked, if set, reports whether the session a token belongs to (its
	// sid claim) has ended; such tokens are ReasonRevoked. It is called on
	// every Verify, so it must not block (the proxy's is an in-memory set).
	// Tokens without sid are never revoked.
	Revoked func(sid string) bool
	// CacheSize bounds the cache of verified signatures (see sigCache): 0
	// means DefaultCacheSize, negative disables it.
	CacheSize int
	// OnCacheLookup, if set, is called on every Verify that gets as far as
	// the cache, with whether the signature check was skipped.
	OnCacheLookup func(hit bool)
}

// Claims are the verified claims the proxy uses.
type Claims struct {
	jwt.RegisteredClaims
	// SID is the session the token was issued for (authsvc sets it); "" when
	// absent, e.g. in HS256 tokens from other issuers.
	SID string `json:"sid,omitempty"`

	// payload is the decoded JSON payload the claims came from, for Claim;
	// nil for claims not made by Verify.
	payload []byte
	// others are payload's top-level members, decoded on the first Claim
	// call (only proxies with an identity mapping ask) and shared after.
	others *lazyClaims
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	revoked   func(string) bool
	secret    []byte
	jwks      *keySet // nil when JWKS is disabled
	parser    *jwt.Parser
	validator *jwt.Validator // the parser's claim checks, for cache hits
	algs      []string
	cache     *sigCache // nil when disabled
	onLookup  func(bool)
	now       func() time.Time
}

// NewVerifier returns a Verifier. With a JWKS URL it starts loading the key
// set in the background (retrying until it succeeds, then refreshing), so it
// never blocks start-up on the JWKS endpoint; ctx ends that work.
func NewVerifier(ctx context.Context, c Config) (*Verifier, error) {
	if len(c.Secret) == 0 && c.JWKSURL == "" {
		return nil, errors.New("token: neither a JWKS URL nor an HS256 secret is configured")
	}
	v := &Verifier{revoked: c.Revoked, cache: newSigCache(c.CacheSize), onLookup: c.OnCacheLookup, now: c.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if v.onLookup == nil {
		v.onLookup = func(bool) {}
	}
	if len(c.Secret) > 0 {
		v.secret = append([]byte(nil), c.Secret...)
		v.algs = append(v.algs, AlgHS256)
	}
	if c.JWKSURL != "" {
		ks, err := newKeySet(ctx, c.JWKSURL, c.JWKS)
		if err != nil {
			return nil, err
		}
		v.jwks = ks
		v.algs = append(v.algs, AlgEdDSA, AlgES256, AlgRS256, AlgPS256)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.algs), // never trust the token's own alg
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience)) // aud may be a string or an array
	}
	if c.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(c.Now))
	}
	v.parser = jwt.NewParser(opts...)
	v.validator = jwt.NewValidator(opts...)
	return v, nil
}

// KeysReady reports whether some key is available: the HS256 secret is set or
// the JWKS has loaded at least once.
func (v *Verifier) KeysReady() bool {
	return v.secret != nil || (v.jwks != nil && v.jwks.loaded())
}

// JWKSLoaded reports whether the JWKS has loaded at least once (false when
// JWKS is disabled).
func (v *Verifier) JWKSLoaded() bool { return v.jwks != nil && v.jwks.loaded() }

// Verify checks raw and returns its claims, or an *Error with the reason.
// The claims may be shared with other calls for the same token: read them,
// never modify them.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxTokenBytes {
		return nil, fail(ReasonTooLarge, nil)
	}
	if !compactJWS(raw) {
		return nil, fail(ReasonMalformed, errors.New("not a compact JWS"))
	}
	var c *Claims
	if v.cache == nil {
		var err error
		if c, _, err = v.verifyFull(ctx, raw); err != nil {
			return nil, err
		}
	} else {
		h := hashToken(raw)
		e := v.cache.get(&h, v.now())
		if e != nil && !v.keyStillPublished(ctx, e) {
			v.cache.drop(&h)
			e = nil
		}
		v.onLookup(e != nil)
		if e != nil {
			// Same bytes as a token that verified: only the checks that
			// depend on time or state remain. (sub was checked on entry.)
			if err := v.validator.Validate(e.claims); err != nil {
				return nil, v.classify(nil, err)
			}
			c = e.claims
		} else {
			var err error
			if c, e, err = v.verifyFull(ctx, raw); err != nil {
				return nil, err
			}
			e.exp = c.ExpiresAt.Time // required: the parser refused tokens without it
			v.cache.put(&h, e)
		}
	}
	if c.SID != "" && v.revoked != nil && v.revoked(c.SID) {
		return nil, fail(ReasonRevoked, nil)
	}
	return c, nil
}

// hashToken is sha256.Sum256([]byte(raw)) without allocating the copy on
// every request: the bytes go through a pooled buffer (tokens are at most
// MaxTokenBytes, checked before this).
func hashToken(raw string) [sha256.Size]byte {
	bp := hashBufs.Get().(*[]byte)
	b := append((*bp)[:0], raw...)
	h := sha256.Sum256(b)
	*bp = b
	hashBufs.Put(bp)
	return h
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// verifyFull parses raw and checks its signature and claims, returning the
// cache entry to remember it by (claims and the key that verified it).
func (v *Verifier) verifyFull(ctx context.Context, raw string) (*Claims, *cacheEntry, error) {
	c := &Claims{}
	e := &cacheEntry{claims: c}
	tok, err := v.parser.ParseWithClaims(raw, c, v.keyFor(ctx, e))
	if err != nil {
		return nil, nil, v.classify(tok, err)
	}
	payload, err := strictClaims(raw)
	if err != nil {
		return nil, nil, fail(ReasonMalformed, err)
	}
	c.payload, c.others = payload, &lazyClaims{}
	if !wire.ValidUserID(c.Subject) {
		if c.Subject == "" {
			return nil, nil, fail(ReasonMissingClaim, errors.New("sub is missing"))
		}
		return nil, nil, fail(ReasonBadSubject, nil)
	}
	return c, e, nil
}

// keyStillPublished reports whether the key that verified a cached token is
// still the one published under its kid. The HS256 secret never changes.
func (v *Verifier) keyStillPublished(ctx context.Context, e *cacheEntry) bool {
	if e.kid == "" {
		return e.alg == AlgHS256 && v.secret != nil
	}
	key, err := v.jwks.key(ctx, e.kid, e.alg)
	return err == nil && keyFits(e.alg, key) && sameKey(e.key, key)
}

// keyFor returns the key for a token whose alg already passed
// WithValidMethods, pinning each algorithm to one key type so that no key can
// be used with another algorithm (the classic HS256-with-the-RSA-public-key
// confusion, or RS256 vs PS256 on a key published for one of them).
//
// The key it returns, with its kid and alg, is recorded in used.
func (v *Verifier) keyFor(ctx context.Context, used *cacheEntry) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		for _, h := range forbiddenHeaders {
			if _, ok := t.Header[h]; ok {
				return nil, fail(ReasonForbiddenHeader, fmt.Errorf("header parameter %q", h))
			}
		}
		alg := t.Method.Alg()
		used.alg = alg
		if alg == AlgHS256 {
			return v.secret, nil // WithValidMethods admits HS256 only when a secret is set
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, fail(ReasonUnknownKID, errors.New("no kid"))
		}
		key, err := v.jwks.key(ctx, kid, alg)
		if err != nil {
			return nil, err
		}
		if !keyFits(alg, key) {
			return nil, fail(ReasonBadAlg, fmt.Errorf("alg %s does not fit the key with that kid", alg))
		}
		used.kid, used.key = kid, key
		return key, nil
	}
}

func keyFits(alg string, key any) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return alg == AlgEdDSA && len(k) == ed25519.PublicKeySize
	case *ecdsa.PublicKey:
		return alg == AlgES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return (alg == AlgRS256 || alg == AlgPS256) && k.N.BitLen() >= minRSABits
	}
	return false
}

// classify maps a jwt error to a Reason.
func (v *Verifier) classify(tok *jwt.Token, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return te // from keyFor
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ReasonMalformed, err)
	case tok != nil && !v.algAllowed(tok.Header["alg"]):
		return fail(ReasonBadAlg, fmt.Errorf("alg not accepted"))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fail(ReasonBadAlg, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(ReasonBadSignature, nil)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ReasonMissingClaim, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ReasonExpired, nil)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(ReasonNotYetValid, nil)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ReasonBadIssuer, nil)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(ReasonBadAudience, nil)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return fail(ReasonMalformed, err)
	}
	return fail(ReasonMalformed, err)
}

func (v *Verifier) algAllowed(a any) bool {
	s, _ := a.(string)
	for _, x := range v.algs {
		if s == x {
			return true
		}
	}
	return false
}

// compactJWS reports whether s has the shape header.payload.signature with
// base64url characters only, so a string of thousands of dots or stray
// characters is refused before any decoding.
func compactJWS(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch jwsByte[s[i]] {
		case jwsDot:
			dots++
			if dots > 2 {
				return false
			}
		case jwsBad:
			return false
		}
	}
	if dots != 2 {
		return false
	}
	h, rest, _ := strings.Cut(s, ".")
	p, sig, _ := strings.Cut(rest, ".")
	return h != "" && p != "" && sig != ""
}

// jwsByte classifies each byte for compactJWS with one table load per byte
// (it runs on every request, over the whole token).
var jwsByte = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '.':
			t[c] = jwsDot
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			t[c] = jwsOK
		default:
			t[c] = jwsBad
		}
	}
	return t
}()

const (
	jwsBad uint8 = iota
	jwsOK
	jwsDot
)

// Status is the HTTP status for a token error: 503 while no JWKS key has ever
// loaded (the token may well be valid, so telling the client to discard it
// with a 401 would sign the user out), else 401.
func Status(err error) int {
	if ReasonOf(err) == ReasonKeysUnavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// registered are the claim names Gatehouse reads. encoding/json matches
// object keys case-insensitively and lets the last duplicate win, and
// golang-jwt's NumericDate also accepts a quoted number, so a signed payload
// could say "EXP", "exp" twice or "exp":"9999999999" and be read as if it
// were well formed. RFC 7519 names are case-sensitive and dates are
// numbers: anything else is refused rather than interpreted.
var registered = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true, "sid": true}

// registeredFold returns the registered claim name key folds to under
// Unicode case folding, as encoding/json matches it, or "".
func registeredFold(key string) string {
	for name := range registered {
		if strings.EqualFold(key, name) {
			return name
		}
	}
	return ""
}

// strictClaims checks the raw payload of a token whose signature verified:
// registered claim names in their exact case and at most once, and
// exp/nbf/iat as JSON numbers. It runs once per token (cache misses only).
//
// It returns the decoded payload, which Claims keeps for Claim.
func strictClaims(raw string) ([]byte, error) {
	first := strings.IndexByte(raw, '.')
	last := strings.LastIndexByte(raw, '.')
	payload, err := base64.RawURLEncoding.DecodeString(raw[first+1 : last])
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	if decided, err := strictClaimsFast(payload); decided {
		return payload, err
	}
	return payload, strictClaimsJSON(payload)
}

// strictClaimsJSON is strictClaims on the decoded payload with
// encoding/json's tokenizer: every JSON the fast path declines.
func strictClaimsJSON(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("payload is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("payload is not a JSON object")
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return errors.New("payload is not a JSON object")
		}
		// encoding/json matches keys with Unicode case folding (ſ is s, K
		// is k), so compare the same way: strings.ToLower would miss "ſub".
		lower := registeredFold(key)
		if lower == "" {
			continue
		}
		if key != lower {
			return fmt.Errorf("claim %q: registered claim names are lower case", key)
		}
		if seen[key] {
			return fmt.Errorf("claim %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "exp", "nbf", "iat":
			if len(val) == 0 || !(val[0] == '-' || (val[0] >= '0' && val[0] <= '9')) {
				return fmt.Errorf("claim %q must be a number", key)
			}
		}
	}
	return nil
}

// strictClaimsFast is strictClaimsJSON for the payloads real issuers send:
// valid JSON, ASCII only, no backslash escapes. It walks the top-level keys
// by hand instead of through json.Decoder.Token (a third of a fresh token's
// verification cost). decided is false, and err nil, for anything
// else: invalid JSON, any byte >= 0x80 or '\\' (escaped or non-ASCII keys
// need encoding/json's own decoding and folding rules), so the two paths
// can never disagree.
func strictClaimsFast(p []byte) (decided bool, err error) {
	if !json.Valid(p) {
		return false, nil
	}
	for _, c := range p {
		if c >= 0x80 || c == '\\' {
			return false, nil
		}
	}
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return true, errors.New("payload is not a JSON object")
	}
	i++
	var seen [8]bool // by index in registeredNames
	for {
		i = skipSpace(p, i)
		if p[i] == '}' {
			return true, nil
		}
		if p[i] == ',' {
			i = skipSpace(p, i+1)
		}
		// p[i] is '"': a key. Valid JSON without backslashes: the key
		// ends at the next quote.
		end := i + 1
		for p[end] != '"' {
			end++
		}
		key := p[i+1 : end]
		i = skipSpace(p, end+1) + 1 // past ':'
		i = skipSpace(p, i)
		valStart := i
		i = skipValue(p, i)
		n := registeredIndex(key)
		if n < 0 {
			continue
		}
		if string(key) != registeredNames[n] {
			return true, fmt.Errorf("claim %q: registered claim names are lower case", key)
		}
		if seen[n] {
			return true, fmt.Errorf("claim %q appears twice", key)
		}
		seen[n] = true
		switch registeredNames[n] {
		case "exp", "nbf", "iat":
			if v := p[valStart]; !(v == '-' || (v >= '0' && v <= '9')) {
				return true, fmt.Errorf("claim %q must be a number", key)
			}
		}
	}
}

var registeredNames = [8]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"}

// registeredIndex returns the index of key in registeredNames ignoring
// ASCII case (the fast path has only ASCII), or -1.
func registeredIndex(key []byte) int {
	if len(key) != 3 {
		return -1
	}
	var l [3]byte
	for i, c := range key {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	for n, name := range registeredNames {
		if string(l[:]) == name {
			return n
		}
	}
	return -1
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value at p[i], for valid
// JSON without backslashes.
func skipValue(p []byte, i int) int {
	depth := 0
	for ; i < len(p); i++ {
		switch p[i] {
		case '"':
			i++
			for p[i] != '"' {
				i++
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
