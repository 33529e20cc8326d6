package wire

import (
	"errors"
	"strconv"
	"strings"
)

// The revocation protocol between authsvc (the writer) and every proxy (the
// readers), through Redis:
//
//   - Sorted set RevokedKey(prefix): member = a session id (the JWT's "sid"),
//     score = Unix seconds after which no token with that sid can be valid.
//   - Pub/sub channel RevocationChannel(prefix): one message per revoked
//     session, FormatRevocation(sid, exp), published after the ZADD.
//
// Readers subscribe first and then read the whole set, again on every
// resubscription, because messages published while they were disconnected
// are lost.

// DefaultRedisPrefix is the key prefix both services use when REDIS_PREFIX
// is unset.
const DefaultRedisPrefix = "gatehouse:"

// RevokedKey names the sorted set of revoked session ids for prefix.
func RevokedKey(prefix string) string { return prefix + "revoked_sids" }

// RevocationChannel names the pub/sub channel of revocations for prefix.
func RevocationChannel(prefix string) string { return prefix + "revocations" }

// FormatRevocation is the channel message for a revoked session: "<sid> <exp>".
func FormatRevocation(sid string, exp int64) string {
	return sid + " " + strconv.FormatInt(exp, 10)
}

// ErrBadRevocation is returned by ParseRevocation for a message that is not
// "<sid> <exp>".
var ErrBadRevocation = errors.New(`revocation message is not "<sid> <unix seconds>"`)

// ParseRevocation reads a channel message written by FormatRevocation.
func ParseRevocation(msg string) (sid string, exp int64, err error) {
	i := strings.LastIndexByte(msg, ' ')
	if i <= 0 {
		return "", 0, ErrBadRevocation
	}
	exp, err = strconv.ParseInt(msg[i+1:], 10, 64)
	if err != nil {
		return "", 0, ErrBadRevocation
	}
	return msg[:i], exp, nil
}
