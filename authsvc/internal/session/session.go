// Package session creates, finds, refreshes and deletes sign-in sessions.
// A session is carried by a random bearer token of 256 bits; the database
// keeps only its SHA-256, so a leaked table cannot be replayed.
package session

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

// ErrNotFound means no live session has the token (unknown, deleted or expired).
var ErrNotFound = errors.New("session: not found")

// Session is one row of the sessions table. TokenHash never leaves the server.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	ID        string    `bun:"id,pk"`
	TokenHash []byte    `bun:"token_hash,notnull"`
	UserID    string    `bun:"user_id,notnull"`
	ExpiresAt time.Time `bun:"expires_at,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
	IPAddress string    `bun:"ip_address,notnull"`
	UserAgent string    `bun:"user_agent,notnull"`
	// Remember is false for rememberMe=false sign-ins: a browser-session
	// cookie and a fixed one-day lifetime that never slides (as Better Auth).
	Remember bool `bun:"remember,notnull"`
}

// Options tunes lifetimes. Zero values take the defaults noted.
type Options struct {
	TTL         time.Duration // default 7 days (Better Auth's expiresIn)
	UpdateAge   time.Duration // default 1 day: expiry slides at most this often
	NoRememberT time.Duration // default 1 day: lifetime of rememberMe=false sessions
}

// Store keeps sessions in Postgres.
type Store struct {
	db  bun.IDB
	opt Options
	now func() time.Time
}

// NewStore returns a Store over db (a *bun.DB or bun.Tx).
func NewStore(db bun.IDB, opt Options) *Store {
	if opt.TTL == 0 {
		opt.TTL = 7 * 24 * time.Hour
	}
	if opt.UpdateAge == 0 {
		opt.UpdateAge = 24 * time.Hour
	}
	if opt.NoRememberT == 0 {
		opt.NoRememberT = 24 * time.Hour
	}
	if opt.NoRememberT > opt.TTL {
		opt.NoRememberT = opt.TTL
	}
	return &Store{db: db, opt: opt, now: time.Now}
}

// NewToken returns a fresh session token: 32 random bytes, base64url.
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken is what the database stores for token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NewID returns a 32-character alphanumeric identifier, the form Better Auth
// uses for user and session ids.
func NewID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [32]byte
	out := make([]byte, 0, 32)
	for len(out) < 32 {
		_, _ = rand.Read(b[:])
		for _, c := range b {
			if c < 248 && len(out) < 32 { // 248 = 4×62: reject to stay uniform
				out = append(out, alphabet[int(c)%62])
			}
		}
	}
	return string(out)
}

// New describes a session to create.
type New struct {
	UserID    string
	Remember  bool
	IPAddress string
	UserAgent string
}

// Create stores a new session and returns it with its clear token, which
// exists only in this return value and in the client's cookie.
func (s *Store) Create(ctx context.Context, n New) (*Session, string, error) {
	token := NewToken()
	now := s.now().UTC().Truncate(time.Millisecond)
	ttl := s.opt.TTL
	if !n.Remember {
		ttl = s.opt.NoRememberT
	}
	sess := &Session{
		ID: NewID(), TokenHash: HashToken(token), UserID: n.UserID,
		ExpiresAt: now.Add(ttl), CreatedAt: now, UpdatedAt: now,
		IPAddress: truncate(n.IPAddress, 64), UserAgent: truncate(n.UserAgent, 512), Remember: n.Remember,
	}
	if _, err := s.db.NewInsert().Model(sess).Exec(ctx); err != nil {
		return nil, "", err
	}
	return sess, token, nil
}

// Find returns the live session for token. An expired session is deleted
// and reported as ErrNotFound.
func (s *Store) Find(ctx context.Context, token string) (*Session, error) {
	sess := new(Session)
	err := s.db.NewSelect().Model(sess).Where("token_hash = ?", HashToken(token)).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !sess.ExpiresAt.After(s.now()) {
		_, _ = s.db.NewDelete().Model((*Session)(nil)).Where("id = ?", sess.ID).Exec(ctx)
		return nil, ErrNotFound
	}
	return sess, nil
}

// NeedsRefresh reports whether sess's expiry should slide forward now: only
// remembered sessions, and at most once per UpdateAge (Better Auth's rule).
func (s *Store) NeedsRefresh(sess *Session) bool {
	return sess.Remember && !sess.ExpiresAt.Add(-s.opt.TTL).Add(s.opt.UpdateAge).After(s.now())
}

// Refresh moves sess's expiry to now + TTL and returns the updated row, or
// ErrNotFound when it was deleted meanwhile (signed out in another tab).
func (s *Store) Refresh(ctx context.Context, sess *Session) (*Session, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	up := *sess
	up.ExpiresAt, up.UpdatedAt = now.Add(s.opt.TTL), now
	res, err := s.db.NewUpdate().Model(&up).Column("expires_at", "updated_at").WherePK().Exec(ctx)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return &up, nil
}

// Delete removes the session for token and returns its id (for revoking
// its access tokens); deleting a missing one returns "" and no error.
func (s *Store) Delete(ctx context.Context, token string) (id string, err error) {
	var ids []string
	err = s.db.NewDelete().Model((*Session)(nil)).Where("token_hash = ?", HashToken(token)).
		Returning("id").Scan(ctx, &ids)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// DeleteForUser removes every session of userID except the one with id
// keep ("" keeps none), and returns the ids it removed.
func (s *Store) DeleteForUser(ctx context.Context, userID, keep string) ([]string, error) {
	if userID == "" {
		panic("session: DeleteForUser called with an empty user id") // would match nothing; a wiring bug
	}
	q := s.db.NewDelete().Model((*Session)(nil)).Where("user_id = ?", userID)
	if keep != "" {
		q = q.Where("id <> ?", keep)
	}
	var ids []string
	if err := q.Returning("id").Scan(ctx, &ids); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return ids, nil
}

// DeleteExpired removes sessions that expired before now and reports how many.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	res, err := s.db.NewDelete().Model((*Session)(nil)).Where("expires_at <= ?", s.now()).Exec(ctx)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the column stays valid UTF-8.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// ListForUser returns userID's live sessions, oldest first.
func (s *Store) ListForUser(ctx context.Context, userID string) ([]Session, error) {
	var list []Session
	err := s.db.NewSelect().Model(&list).Where("user_id = ? AND expires_at > ?", userID, s.now()).
		OrderExpr("created_at, id").Limit(1000).Scan(ctx)
	return list, err
}

// DeleteOwned removes the session with id if it belongs to userID, and
// reports whether it did.
func (s *Store) DeleteOwned(ctx context.Context, userID, id string) (bool, error) {
	res, err := s.db.NewDelete().Model((*Session)(nil)).Where("id = ? AND user_id = ?", id, userID).Exec(ctx)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
