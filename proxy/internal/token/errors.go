// Package token finds the access token in a request and verifies it: the
// signature with a key pinned to its algorithm (JWKS keys by kid, or the HS256
// secret), then iss, aud, exp, nbf, iat and the shape of sub.
//
// Every rejection carries a Reason, which is a metric label and a log field.
// Neither an error's text nor a Reason ever contains the token itself.
package token

import "errors"

// Reason says why a token was rejected.
type Reason string

// Reasons, used as the "reason" label of the auth-failure metric.
const (
	ReasonMissing         Reason = "missing"          // no token at all
	ReasonMalformed       Reason = "malformed"        // not a compact JWS, bad base64 or JSON, not "Bearer"
	ReasonTooLarge        Reason = "too_large"        // over MaxTokenBytes
	ReasonAmbiguous       Reason = "ambiguous"        // two Authorization headers, or bearer != cookie
	ReasonBadAlg          Reason = "bad_alg"          // none, unknown, or not allowed for the key
	ReasonForbiddenHeader Reason = "forbidden_header" // jwk, jku, x5u, x5c, crit ... in the JOSE header
	ReasonUnknownKID      Reason = "unknown_kid"      // no JWKS key with that kid (or no kid)
	ReasonBadSignature    Reason = "bad_signature"
	ReasonExpired         Reason = "expired"
	ReasonNotYetValid     Reason = "not_yet_valid" // nbf or iat in the future beyond the leeway
	ReasonBadIssuer       Reason = "bad_issuer"
	ReasonBadAudience     Reason = "bad_audience"
	ReasonMissingClaim    Reason = "missing_claim" // exp (or sub) absent
	ReasonBadSubject      Reason = "bad_subject"   // sub not 1–128 printable ASCII without space or comma
	ReasonKeysUnavailable Reason = "keys_unavailable"
	ReasonRevoked         Reason = "revoked" // its session (sid) was signed out or revoked
	// ReasonBadClaim: a claim mapped to an identity header (PROXY_ROUTES_FILE
	// identity:) has a value that cannot be a header: an object, a mixed
	// array, control characters, or over 1 KiB.
	ReasonBadClaim Reason = "bad_claim"
)

// Error is a rejected or missing token.
type Error struct {
	Reason Reason
	err    error // detail for logs; never contains the token
}

func (e *Error) Error() string {
	if e.err != nil {
		return "token: " + string(e.Reason) + ": " + e.err.Error()
	}
	return "token: " + string(e.Reason)
}

func (e *Error) Unwrap() error { return e.err }

func fail(r Reason, err error) *Error { return &Error{Reason: r, err: err} }

// Refuse returns the error for a token refused for reason r by a check made
// outside this package (ReasonBadClaim); detail is for logs and must not
// contain the token.
func Refuse(r Reason, detail error) error { return fail(r, detail) }

// ReasonOf returns the Reason of a token error, or "" when err is not one.
func ReasonOf(err error) Reason {
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}
