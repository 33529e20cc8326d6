package todo

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo/migrations"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

// seededDB is a migrated database where user "big" owns n todos among
// others' rows, analysed so the planner sees the real sizes.
func seededDB(t testing.TB, n int) *bun.DB {
	t.Helper()
	db, err := pgdb.Open(testenv.Database(t), pgdb.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := pgdb.Migrate(ctx, db, migrations.FS, "backend", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		// Other users' rows interleaved with big's, as in a shared table.
		`INSERT INTO todos (user_id, title, completed)
		 SELECT 'user' || (g % 1000), 'other ' || g, g % 2 = 0 FROM generate_series(1, 20000) g`,
		fmt.Sprintf(`INSERT INTO todos (user_id, title, completed)
		 SELECT 'big', 'todo ' || g, g %% 3 = 0 FROM generate_series(1, %d) g`, n),
		`ANALYZE todos`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// The list query is a range scan of the (user_id, id) primary key starting
// at the page's first row: it reads one page, however many rows the user or
// the table has.
func TestListUsesIndex(t *testing.T) {
	t.Parallel()
	db := seededDB(t, 100_000)
	us := NewStore(db).ForUser(mustUser(t, "big"))
	done := false
	for _, o := range []ListOptions{{}, {After: 50_000}, {Completed: &done, Limit: 100}} {
		var dst []Todo
		q := us.listQuery(&dst, o, 50)
		var plan []string
		rows, err := db.QueryContext(context.Background(), "EXPLAIN "+q.String())
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "Index Scan using todos_pkey") || !strings.Contains(text, "Index Cond: ((user_id = 'big'::text) AND (id > ") ||
			strings.Contains(text, "Seq Scan") || strings.Contains(text, "Sort") {
			t.Errorf("list %+v is not an ordered range scan of the (user_id, id) key:\n%s", o, text)
		}
	}
}

// BenchmarkList shows a page costs the same for a user with 10 todos and
// one with 100,000 (pagination bounded by the index): compare the
// todos=N rows; deep pages (after the middle) cost the same as the first.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 1_000, 100_000} {
		db := seededDB(b, n)
		us := NewStore(db).ForUser(mustUser(b, "big"))
		var mid int64
		if err := db.QueryRowContext(ctx, "SELECT min(id) + ? / 2 FROM todos WHERE user_id = 'big'", n).Scan(&mid); err != nil {
			b.Fatal(err)
		}
		for _, page := range []struct {
			name string
			o    ListOptions
		}{{"first", ListOptions{}}, {"middle", ListOptions{After: mid}}} {
			b.Run(fmt.Sprintf("todos=%d/page=%s", n, page.name), func(b *testing.B) {
				for b.Loop() {
					if _, _, err := us.List(ctx, page.o); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// mustUser parses id, the only way to get a UserID.
func mustUser(t testing.TB, id string) UserID {
	t.Helper()
	u, err := ParseUserID(id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
