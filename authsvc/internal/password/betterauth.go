package password

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"
)

// BetterAuthPrefix marks a stored hash imported from Better Auth
// (`authsvc import-better-auth`): the rest is Better Auth's own
// "<salt hex>:<key hex>" from account.password.
const BetterAuthPrefix = "$better-auth-scrypt$"

// Better Auth's scrypt parameters (@better-auth/utils/password): N=16384,
// r=16, p=1, a 64-byte key. The salt is the hex *string* (its ASCII bytes,
// not the decoded bytes) and the password is NFKC-normalised first.
const (
	baN, baR, baP, baKeyLen = 16384, 16, 1, 64
)

// FromBetterAuth wraps Better Auth's "<salt hex>:<key hex>" for storage,
// after checking its shape.
func FromBetterAuth(s string) (string, error) {
	salt, key, ok := strings.Cut(s, ":")
	if !ok || salt == "" || len(key) != 2*baKeyLen || len(salt) > 256 {
		return "", fmt.Errorf("password: not a Better Auth scrypt hash")
	}
	if _, err := hex.DecodeString(key); err != nil {
		return "", fmt.Errorf("password: not a Better Auth scrypt hash")
	}
	return BetterAuthPrefix + s, nil
}

// verifyBetterAuth checks password against an imported Better Auth hash,
// under the same concurrency bound as argon2id (scrypt with these
// parameters holds 32 MiB while it runs).
func (h *Hasher) verifyBetterAuth(ctx context.Context, password, encoded string) (bool, error) {
	salt, keyHex, ok := strings.Cut(strings.TrimPrefix(encoded, BetterAuthPrefix), ":")
	want, err := hex.DecodeString(keyHex)
	if !ok || err != nil || len(want) != baKeyLen {
		return false, ErrMalformed
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got, err := scrypt.Key([]byte(norm.NFKC.String(password)), []byte(salt), baN, baR, baP, baKeyLen)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
