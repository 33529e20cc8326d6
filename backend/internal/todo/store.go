package todo

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// Store hands out per-user views of the todo table. It has no query methods
// of its own, and its handle never leaves this package.
type Store struct{ db bun.IDB }

// NewStore returns a Store over db (*bun.DB, or a bun.Tx in tests).
func NewStore(db bun.IDB) *Store { return &Store{db: db} }

// UserStore is one user's todos. Every query it runs is filtered by uid.
type UserStore struct {
	db  bun.IDB
	uid UserID
}

// ForUser returns uid's view. A zero uid is a wiring bug (the middleware
// rejects it first), so it panics rather than return an unscoped view.
func (s *Store) ForUser(uid UserID) *UserStore {
	if uid.IsZero() {
		panic("todo: ForUser called with zero UserID")
	}
	return &UserStore{db: s.db, uid: uid}
}

// The scoped builders are the only NewSelect/NewUpdate/NewDelete calls.
func (s *UserStore) selectQ(m any) *bun.SelectQuery {
	return s.db.NewSelect().Model(m).Where("?TableAlias.user_id = ?", s.uid.id)
}

func (s *UserStore) updateQ(m any) *bun.UpdateQuery {
	return s.db.NewUpdate().Model(m).Where("?TableAlias.user_id = ?", s.uid.id)
}

func (s *UserStore) deleteQ(m any) *bun.DeleteQuery {
	return s.db.NewDelete().Model(m).Where("?TableAlias.user_id = ?", s.uid.id)
}

// ListOptions filters and pages a list. The zero value lists the first
// DefaultLimit todos of any state.
type ListOptions struct {
	Completed *bool // nil: both
	After     int64 // only todos with id > After
	Limit     int   // 1..MaxLimit; 0 means DefaultLimit
}

// Page size bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// List returns the user's todos oldest first (by id) and whether more remain.
func (s *UserStore) List(ctx context.Context, o ListOptions) ([]Todo, bool, error) {
	limit := o.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = DefaultLimit
	}
	todos := make([]Todo, 0, limit+1)
	if err := s.listQuery(&todos, o, limit).Scan(ctx); err != nil {
		return nil, false, err
	}
	more := len(todos) > limit
	if more {
		todos = todos[:limit]
	}
	return todos, more, nil
}

// listQuery is one page: a range scan of the primary key (user_id, id)
// starting at (uid, After), whatever the user's total or the table's size
// (TestListUsesIndex, BenchmarkList).
func (s *UserStore) listQuery(dst *[]Todo, o ListOptions, limit int) *bun.SelectQuery {
	q := s.selectQ(dst).Where("?TableAlias.id > ?", o.After).OrderExpr("?TableAlias.id ASC").Limit(int64(limit + 1))
	if o.Completed != nil {
		q = q.Where("?TableAlias.completed = ?", *o.Completed)
	}
	return q
}

// Create inserts a todo owned by this store's user. title must have passed
// CleanTitle.
func (s *UserStore) Create(ctx context.Context, title string, completed bool) (Todo, error) {
	t := Todo{UserID: s.uid.id, Title: title, Completed: completed}
	// The owner comes from s.uid, never from the caller.
	_, err := s.db.NewInsert().Model(&t).ExcludeColumn("id", "created_at", "updated_at").Returning("*").Exec(ctx)
	return t, err
}

// Get returns one of the user's todos, or ErrNotFound.
func (s *UserStore) Get(ctx context.Context, id int64) (Todo, error) {
	var t Todo
	err := s.selectQ(&t).Where("?TableAlias.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	return t, err
}

// Patch names the fields to change; nil leaves a field as it is.
type Patch struct {
	Title     *string // must have passed CleanTitle
	Completed *bool
}

// Update applies p to one of the user's todos and returns the result, or
// ErrNotFound. An empty patch only returns the todo.
func (s *UserStore) Update(ctx context.Context, id int64, p Patch) (Todo, error) {
	if p.Title == nil && p.Completed == nil {
		return s.Get(ctx, id)
	}
	var t Todo
	q := s.updateQ(&t).Where("?TableAlias.id = ?", id).Set("updated_at = ?", time.Now().UTC())
	if p.Title != nil {
		q = q.Set("title = ?", *p.Title)
	}
	if p.Completed != nil {
		q = q.Set("completed = ?", *p.Completed)
	}
	res, err := q.Returning("*").Exec(ctx)
	if err != nil {
		return Todo{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Todo{}, ErrNotFound
	}
	return t, nil
}

// Delete removes one of the user's todos, or returns ErrNotFound.
func (s *UserStore) Delete(ctx context.Context, id int64) error {
	res, err := s.deleteQ((*Todo)(nil)).Where("?TableAlias.id = ?", id).Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteAll removes every todo of the user (the account was deleted) and
// reports how many. Running it again is harmless: it finds nothing.
func (s *UserStore) DeleteAll(ctx context.Context) (int64, error) {
	res, err := s.deleteQ((*Todo)(nil)).Exec(ctx)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
