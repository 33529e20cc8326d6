// Package mailtoken keeps the one-time tokens authsvc sends by mail:
// password reset and email verification. A token is 256 random bits
// (base64url); the database holds only its SHA-256, so a leaked table
// cannot be used. A token is good for one use within its lifetime, and
// only while it is the newest one mailed to its user for its purpose.
//
// The life of a token follows the mail that carries it: Issue stores it,
// the caller sends the mail, then either Supersede (the mail went out:
// older tokens of the user and purpose stop working) or Discard (it did
// not: the token is deleted, so no usable token exists without a sent
// mail, and the older one, if any, still works).
package mailtoken

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// Purpose says what a token may be used for.
type Purpose string

const (
	ResetPassword Purpose = "reset-password"
	VerifyEmail   Purpose = "verify-email"
)

// TTL is every token's lifetime (SPEC.md: one hour).
const TTL = time.Hour

var (
	// ErrInvalid means no token matches (unknown, used, superseded, or
	// for another purpose).
	ErrInvalid = errors.New("mailtoken: invalid token")
	// ErrExpired means the token matched but its hour has passed.
	ErrExpired = errors.New("mailtoken: token expired")
)

// Token is one stored token; the clear value is never stored.
type Token struct {
	bun.BaseModel `bun:"table:mail_tokens"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Purpose   Purpose   `bun:"purpose,notnull"`
	TokenHash []byte    `bun:"token_hash,notnull"`
	UserID    string    `bun:"user_id,notnull"`
	Email     string    `bun:"email,notnull"`
	ExpiresAt time.Time `bun:"expires_at,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// Store reads and writes tokens.
type Store struct {
	db  bun.IDB
	now func() time.Time
}

// NewStore returns a Store over db (a *bun.DB or bun.Tx).
func NewStore(db bun.IDB) *Store { return &Store{db: db, now: time.Now} }

// New returns a fresh clear token and its hash, without storing anything;
// callers that must not reveal whether an account exists call it on the
// no-account path too, to spend the same work.
func New() (token string, hash []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token)
}

// Hash is what the database stores for token.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Issue stores a new token for userID and purpose, bound to email, and
// returns it in clear with its row id (for Supersede or Discard).
func (s *Store) Issue(ctx context.Context, p Purpose, userID, email string) (string, int64, error) {
	token, hash := New()
	now := s.now().UTC().Truncate(time.Millisecond)
	t := &Token{Purpose: p, TokenHash: hash, UserID: userID, Email: email, ExpiresAt: now.Add(TTL), CreatedAt: now}
	if _, err := s.db.NewInsert().Model(t).Returning("id").Exec(ctx); err != nil {
		return "", 0, err
	}
	return token, t.ID, nil
}

// Supersede deletes the user's tokens for purpose issued before id, once
// id's mail has gone out. Ids only grow, so of two requests racing, the
// later token survives whichever finishes first.
func (s *Store) Supersede(ctx context.Context, p Purpose, userID string, id int64) error {
	_, err := s.db.NewDelete().Model((*Token)(nil)).
		Where("user_id = ? AND purpose = ? AND id < ?", userID, p, id).Exec(ctx)
	return err
}

// Discard deletes the token with id (its mail could not be sent).
func (s *Store) Discard(ctx context.Context, id int64) error {
	_, err := s.db.NewDelete().Model((*Token)(nil)).Where("id = ?", id).Exec(ctx)
	return err
}

// Peek returns the live token without using it up (the reset link's GET,
// which only redirects to the form).
func (s *Store) Peek(ctx context.Context, p Purpose, token string) (*Token, error) {
	t := new(Token)
	err := s.db.NewSelect().Model(t).Where("token_hash = ? AND purpose = ?", Hash(token), p).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if !t.ExpiresAt.After(s.now()) {
		return nil, ErrExpired
	}
	return t, nil
}

// Consume uses the token up: it is deleted whatever the outcome, and
// returned only when it was live. Two concurrent uses of one token cannot
// both succeed: only one DELETE returns the row. Run it in the same
// transaction as the change the token authorises, so a failed change
// leaves the token usable.
func (s *Store) Consume(ctx context.Context, p Purpose, token string) (*Token, error) {
	var rows []Token
	err := s.db.NewDelete().Model(&rows).Where("token_hash = ? AND purpose = ?", Hash(token), p).
		Returning("*").Scan(ctx, &rows)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrInvalid
	}
	if !rows[0].ExpiresAt.After(s.now()) {
		return nil, ErrExpired
	}
	return &rows[0], nil
}

// DeleteForUser removes every token of userID for purpose (after a
// password change, outstanding reset links must stop working).
func (s *Store) DeleteForUser(ctx context.Context, p Purpose, userID string) error {
	_, err := s.db.NewDelete().Model((*Token)(nil)).Where("user_id = ? AND purpose = ?", userID, p).Exec(ctx)
	return err
}

// DeleteExpired removes tokens whose hour has passed.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	res, err := s.db.NewDelete().Model((*Token)(nil)).Where("expires_at <= ?", s.now()).Exec(ctx)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
