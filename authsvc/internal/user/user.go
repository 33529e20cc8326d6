// Package user stores accounts: a profile and an argon2id password hash.
// Emails are unique regardless of letter case (a unique index on lower(email)).
package user

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

var (
	// ErrNotFound means no user has that id or email.
	ErrNotFound = errors.New("user: not found")
	// ErrEmailTaken means another account already uses the email.
	ErrEmailTaken = errors.New("user: email already registered")
)

// User is one account. PasswordHash never leaves the server.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID            string    `bun:"id,pk"`
	Name          string    `bun:"name,notnull"`
	Email         string    `bun:"email,notnull"`
	EmailVerified bool      `bun:"email_verified,notnull"`
	Image         *string   `bun:"image"`
	PasswordHash  string    `bun:"password_hash,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
	UpdatedAt     time.Time `bun:"updated_at,notnull"`
}

// Store reads and writes users.
type Store struct{ db bun.IDB }

// NewStore returns a Store over db.
func NewStore(db bun.IDB) *Store { return &Store{db: db} }

// Create inserts u, setting its timestamps; ErrEmailTaken when the email
// (in any letter case) is already registered.
func (s *Store) Create(ctx context.Context, u *User) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	u.CreatedAt, u.UpdatedAt = now, now
	_, err := s.db.NewInsert().Model(u).Exec(ctx)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return ErrEmailTaken
	}
	return err
}

// ByEmail finds a user by email, ignoring letter case.
func (s *Store) ByEmail(ctx context.Context, email string) (*User, error) {
	return s.one(ctx, "lower(email) = lower(?)", email)
}

// ByID finds a user by id.
func (s *Store) ByID(ctx context.Context, id string) (*User, error) {
	return s.one(ctx, "id = ?", id)
}

func (s *Store) one(ctx context.Context, where string, arg any) (*User, error) {
	u := new(User)
	err := s.db.NewSelect().Model(u).Where(where, arg).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetPasswordHash replaces a user's hash, e.g. after the parameters changed.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	_, err := s.db.NewUpdate().Model((*User)(nil)).
		Set("password_hash = ?", hash).Set("updated_at = ?", time.Now().UTC()).
		Where("id = ?", id).Exec(ctx)
	return err
}

// ReplacePasswordHash sets hash only while the stored hash is still old,
// and reports whether it did. A sign-in's rehash uses it: an unconditional
// write could land after a concurrent password change or reset and put the
// old password back.
func (s *Store) ReplacePasswordHash(ctx context.Context, id, old, hash string) (bool, error) {
	res, err := s.db.NewUpdate().Model((*User)(nil)).
		Set("password_hash = ?", hash).Set("updated_at = ?", time.Now().UTC()).
		Where("id = ?", id).Where("password_hash = ?", old).Exec(ctx)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Profile is a change to a user's public fields; nil fields stay as they
// are. Image is a pointer to a pointer so that null can clear it.
type Profile struct {
	Name  *string
	Image **string
}

// Update applies p to the user id and returns the updated user.
func (s *Store) Update(ctx context.Context, id string, p Profile) (*User, error) {
	q := s.db.NewUpdate().Model((*User)(nil)).Set("updated_at = ?", time.Now().UTC().Truncate(time.Millisecond)).Where("id = ?", id)
	if p.Name != nil {
		q = q.Set("name = ?", *p.Name)
	}
	if p.Image != nil {
		q = q.Set("image = ?", *p.Image)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return s.ByID(ctx, id)
}

// SetEmailVerified marks id's email verified, only while it is still email
// (a verification link proves ownership of the address it was sent to).
func (s *Store) SetEmailVerified(ctx context.Context, id, email string) error {
	res, err := s.db.NewUpdate().Model((*User)(nil)).
		Set("email_verified = true").Set("updated_at = ?", time.Now().UTC().Truncate(time.Millisecond)).
		Where("id = ? AND lower(email) = lower(?)", id, email).Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete removes the user id; its sessions and mail tokens go with it
// (ON DELETE CASCADE). Deleting a missing user returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.db.NewDelete().Model((*User)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
