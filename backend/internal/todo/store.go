package todo

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"gatehouse.dev/kit/pgdb"
)

// Store hands out per-user views of the todo table. It has no query methods
// of its own, and its handle never leaves this package.
type Store struct {
	db  *bun.DB
	hot *pgdb.Hot // List and Create, over the same pool
}

// NewStore returns a Store over db; hot runs List and Create.
func NewStore(db *bun.DB, hot *pgdb.Hot) *Store { return &Store{db: db, hot: hot} }

// UserStore is one user's todos. Every query it runs is filtered by uid.
type UserStore struct {
	db  *bun.DB
	hot *pgdb.Hot
	uid UserID
}

// ForUser returns uid's view. A zero uid is a wiring bug (the middleware
// rejects it first), so it panics rather than return an unscoped view.
func (s *Store) ForUser(uid UserID) *UserStore {
	if uid.IsZero() {
		panic("todo: ForUser called with zero UserID")
	}
	return &UserStore{db: s.db, hot: s.hot, uid: uid}
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
// It is the one query every page view runs, so it skips bun: pgx scans the
// rows itself, and the statement is fixed text with parameters, prepared
// once per connection where the pool allows (pgdb.Hot; BenchmarkListPath).
func (s *UserStore) List(ctx context.Context, o ListOptions) ([]Todo, bool, error) {
	limit := o.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = DefaultLimit
	}
	query, args := s.listStatement(o, limit)
	todos := make([]Todo, 0, limit+1)
	err := s.hot.Run(ctx, func(c *pgx.Conn, mode pgx.QueryExecMode) error {
		todos = todos[:0]
		rows, err := c.Query(ctx, query, append([]any{mode}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t Todo
			if err := rows.Scan(t.columns()...); err != nil {
				return err
			}
			todos = append(todos, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, err
	}
	more := len(todos) > limit
	if more {
		todos = todos[:limit]
	}
	return todos, more, nil
}

// listColumns are Todo's columns in the order List and Create scan them
// into columns (TestListColumnsAreTheModels keeps them in step with the bun
// model).
const listColumns = "id, user_id, title, completed, created_at, updated_at"

// columns are t's fields in listColumns' order, for Scan.
func (t *Todo) columns() []any {
	return []any{&t.ID, &t.UserID, &t.Title, &t.Completed, &t.CreatedAt, &t.UpdatedAt}
}

// The list statements: a range scan of the primary key (user_id, id)
// starting at (uid, After), whatever the user's total or the table's size
// (TestListUsesIndex, BenchmarkList). The user is always $1.
const (
	listSQL        = "SELECT " + listColumns + " FROM todos WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
	listByStateSQL = "SELECT " + listColumns + " FROM todos WHERE user_id = $1 AND id > $2 AND completed = $4 ORDER BY id LIMIT $3"
)

// listStatement is one page's statement and arguments, limit+1 rows to
// tell whether more remain.
func (s *UserStore) listStatement(o ListOptions, limit int) (string, []any) {
	if o.Completed != nil {
		return listByStateSQL, []any{s.uid.id, o.After, limit + 1, *o.Completed}
	}
	return listSQL, []any{s.uid.id, o.After, limit + 1}
}

// Create inserts a todo owned by this store's user. title must have passed
// CleanTitle.
func (s *UserStore) Create(ctx context.Context, title string, completed bool) (Todo, error) {
	// The owner comes from s.uid, never from the caller. Through pgx, as
	// List (BenchmarkCreatePath).
	var t Todo
	err := s.hot.Run(ctx, func(c *pgx.Conn, mode pgx.QueryExecMode) error {
		return c.QueryRow(ctx, createSQL, mode, s.uid.id, title, completed).Scan(t.columns()...)
	})
	if err != nil {
		return Todo{}, err
	}
	return t, nil
}

// createSQL inserts one todo; id and the timestamps are the table's defaults.
const createSQL = "INSERT INTO todos (user_id, title, completed) VALUES ($1, $2, $3) RETURNING " + listColumns

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
