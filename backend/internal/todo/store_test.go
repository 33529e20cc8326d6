package todo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/backend/internal/todo/migrations"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t testing.TB) *todo.Store {
	t.Helper()
	db := newDB(t)
	return todo.NewStore(db, pgdb.NewHot(db, true, zap.NewNop()))
}

// newDB is a migrated, empty database of the test's own.
func newDB(t testing.TB) *bun.DB {
	t.Helper()
	db, err := pgdb.Open(testenv.Database(t), pgdb.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := pgdb.Migrate(context.Background(), db, migrations.FS, "backend", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestUserStoreIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	alice, bob := s.ForUser(parsed(t, "alice")), s.ForUser(parsed(t, "bob"))
	mine, err := alice.Create(ctx, "alice's", false)
	if err != nil {
		t.Fatal(err)
	}
	done := true
	title := "hijacked"
	for _, tt := range []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"owner reads", func() error { _, err := alice.Get(ctx, mine.ID); return err }, nil},
		{"other user cannot read", func() error { _, err := bob.Get(ctx, mine.ID); return err }, todo.ErrNotFound},
		{"other user cannot update", func() error {
			_, err := bob.Update(ctx, mine.ID, todo.Patch{Title: &title, Completed: &done})
			return err
		}, todo.ErrNotFound},
		{"other user cannot delete", func() error { return bob.Delete(ctx, mine.ID) }, todo.ErrNotFound},
		{"other user's list is empty", func() error {
			list, _, err := bob.List(ctx, todo.ListOptions{})
			if err == nil && len(list) != 0 {
				return errors.New("bob sees alice's todos")
			}
			return err
		}, nil},
		{"missing id is not found", func() error { _, err := alice.Get(ctx, mine.ID+1000); return err }, todo.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	got, err := alice.Get(ctx, mine.ID)
	if err != nil || got.Title != "alice's" || got.Completed || got.UserID != "alice" {
		t.Errorf("alice's todo after bob's attempts = %+v, %v; want it unchanged", got, err)
	}
}

func TestForUserZeroPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ForUser(zero UserID) did not panic; an unscoped view must be impossible")
		}
	}()
	todo.NewStore(nil, nil).ForUser(todo.UserID{})
}

func TestParseUserID(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"alice", true}, {"user_01HXYZ-._~!", true}, {string(long[:128]), true},
		{"", false}, {string(long), false}, {"a b", false}, {"a,b", false},
		{"a\tb", false}, {"caf\u00e9", false}, {"a\x00", false}, {"a\x7f", false},
	} {
		_, err := todo.ParseUserID(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseUserID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestCleanTitle(t *testing.T) {
	long := make([]rune, 501)
	for i := range long {
		long[i] = 'é'
	}
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"  milk  ", "milk", true},
		{string(long[:500]), string(long[:500]), true},
		{string(long), "", false},
		{"   ", "", false},
		{"", "", false},
		{"bad\xffutf8", "", false},
	} {
		got, err := todo.CleanTitle(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CleanTitle(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// parsed parses id, the only way to get a UserID.
func parsed(t testing.TB, id string) todo.UserID {
	t.Helper()
	u, err := todo.ParseUserID(id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
