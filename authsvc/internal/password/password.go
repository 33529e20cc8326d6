// Package password hashes and verifies passwords with argon2id, encoded in the
// PHC string format, under a bound on concurrent hashing so that a flood of
// sign-ins cannot exhaust memory (each argon2id run allocates Params.Memory).
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters. The zero value is not usable; start
// from DefaultParams.
type Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32
	KeyLen      uint32
}

// DefaultParams are OWASP's minimum recommendation for argon2id
// (m=19 MiB, t=2, p=1), the floor SPEC.md sets for production.
var DefaultParams = Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Weak reports whether p is below OWASP's minimum (fine for tests only).
func (p Params) Weak() bool {
	return p.Memory < DefaultParams.Memory || p.Iterations < DefaultParams.Iterations || p.Parallelism < 1
}

// ErrMalformed means a stored hash is not an argon2id PHC string.
var ErrMalformed = errors.New("password: malformed argon2id hash")

// Observer receives timings for metrics; any field may be nil.
type Observer struct {
	Hashed func(wait, work time.Duration) // after each argon2id run
}

// Hasher hashes and verifies passwords. At most `concurrency` argon2id runs
// happen at once; further callers queue (and give up when their context ends),
// so peak memory is about concurrency × Params.Memory.
type Hasher struct {
	params  Params
	sem     chan struct{}
	waiting atomic.Int64
	obs     Observer
	dummy   string // a hash of a random password, verified for unknown users
}

// New returns a Hasher using params with the given concurrency bound
// (values below 1 mean 1). It computes one dummy hash up front.
func New(params Params, concurrency int, obs Observer) (*Hasher, error) {
	if concurrency < 1 {
		concurrency = 1
	}
	if params.SaltLen == 0 {
		params.SaltLen = DefaultParams.SaltLen
	}
	if params.KeyLen == 0 {
		params.KeyLen = DefaultParams.KeyLen
	}
	if params.Memory == 0 || params.Iterations == 0 || params.Parallelism == 0 {
		return nil, errors.New("password: memory, iterations and parallelism must be positive")
	}
	h := &Hasher{params: params, sem: make(chan struct{}, concurrency), obs: obs}
	var pw [32]byte
	_, _ = rand.Read(pw[:])
	dummy, err := h.Hash(context.Background(), base64.RawStdEncoding.EncodeToString(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// QueueDepth is the number of callers waiting for a hashing slot.
func (h *Hasher) QueueDepth() int { return int(h.waiting.Load()) }

// Hash returns the PHC string of password with a fresh random salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := h.derive(ctx, password, salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, and whether
// the hash should be replaced because it was made with other parameters. The
// comparison is constant-time.
//
// A hash imported from Better Auth (BetterAuthPrefix) is checked with its
// scrypt and always asks for a rehash, so it is replaced by argon2id at the
// first successful sign-in.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	if strings.HasPrefix(encoded, BetterAuthPrefix) {
		ok, err = h.verifyBetterAuth(ctx, password, encoded)
		return ok, ok, err
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// VerifyDummy does the work of Verify against a hash no password matches, so
// that answering "no such user" takes as long as "wrong password". It returns
// only an error (queueing cancelled), never a match.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// acquire waits for a hashing slot; release gives it back.
func (h *Hasher) acquire(ctx context.Context) error {
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.sem }

func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	start := time.Now()
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	began := time.Now()
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if h.obs.Hashed != nil {
		h.obs.Hashed(began.Sub(start), time.Since(began))
	}
	return key, nil
}

// encode writes $argon2id$v=19$m=...,t=...,p=...$salt$key (unpadded base64),
// the format of the reference implementation and of most libraries.
func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformed
	}
	var m, t, par uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return p, nil, nil, ErrMalformed
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			par = n
		default:
			return p, nil, nil, ErrMalformed
		}
	}
	// Bound what a tampered row could make us allocate (4 GiB) or loop on.
	if m == 0 || m > 4<<20 || t == 0 || t > 64 || par == 0 || par > 255 {
		return p, nil, nil, ErrMalformed
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, ErrMalformed
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, ErrMalformed
	}
	p = Params{Memory: uint32(m), Iterations: uint32(t), Parallelism: uint8(par), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}
