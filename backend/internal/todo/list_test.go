package todo

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo/migrations"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

// seededDB is a migrated database where user "big" owns n todos among
// others' rows, analysed so the planner sees the real sizes.
func seededDB(t testing.TB, n int) *bun.DB {
	return seedDB(t, openDB(t, testenv.Database(t)), n)
}

// newStore is a Store over db that prepares its statements, as in
// production.
func newStore(db *bun.DB) *Store { return NewStore(db, pgdb.NewHot(db, true, zap.NewNop())) }

func openDB(t testing.TB, dsn string) *bun.DB {
	t.Helper()
	db, err := pgdb.Open(dsn, pgdb.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func seedDB(t testing.TB, db *bun.DB, n int) *bun.DB {
	t.Helper()
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
// the table has. Checked both ways List sends it: with the simple protocol
// (the arguments are in the text, so Postgres plans for these very values)
// and prepared, where Postgres may settle on a generic plan for any values.
func TestListUsesIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := seededDB(t, 100_000)
	us := newStore(db).ForUser(mustUser(t, "big"))
	done := false
	for i, o := range []ListOptions{{}, {After: 50_000}, {Completed: &done, Limit: 100}} {
		query, args := us.listStatement(o, 50)
		var custom, generic string
		name := fmt.Sprintf("list_page_%d", i) // one per case: a failed case leaves nothing in the next one's way
		err := pgdb.Native(ctx, db, func(c *pgx.Conn) error {
			var err error
			if custom, err = explain(ctx, c, "EXPLAIN "+query, args...); err != nil {
				return err
			}
			// A prepared statement's generic plan, forced, in a transaction
			// that takes the setting with it. PREPARE outlives the
			// transaction, so the statement is deallocated after it.
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan")
			if err == nil {
				if _, err = tx.Exec(ctx, "PREPARE "+name+" AS "+query); err == nil {
					literals := []string{"'big'", fmt.Sprint(args[1]), fmt.Sprint(args[2])}
					if len(args) > 3 {
						literals = append(literals, fmt.Sprint(args[3]))
					}
					generic, err = explain(ctx, tx.Conn(), "EXPLAIN EXECUTE "+name+"("+strings.Join(literals, ", ")+")")
				}
			}
			_ = tx.Rollback(ctx)
			_, _ = c.Exec(ctx, "DEALLOCATE "+name)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct{ kind, plan, cond string }{
			{"simple-protocol", custom, "Index Cond: ((user_id = 'big'::text) AND (id > "},
			{"generic (prepared)", generic, "Index Cond: ((user_id = $1) AND (id > $2))"},
		} {
			if !strings.Contains(p.plan, "Index Scan using todos_pkey") || !strings.Contains(p.plan, p.cond) ||
				strings.Contains(p.plan, "Seq Scan") || strings.Contains(p.plan, "Sort") {
				t.Errorf("list %+v, %s plan: not an ordered range scan of the (user_id, id) key:\n%s", o, p.kind, p.plan)
			}
		}
	}
}

// explain returns the plan EXPLAIN prints, one line per row.
func explain(ctx context.Context, c *pgx.Conn, sql string, args ...any) (string, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return "", err
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		plan = append(plan, line)
	}
	return strings.Join(plan, "\n"), rows.Err()
}

// BenchmarkList shows a page costs the same for a user with 10 todos and
// one with 100,000 (pagination bounded by the index): compare the
// todos=N rows; deep pages (after the middle) cost the same as the first.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 1_000, 100_000} {
		db := seededDB(b, n)
		us := newStore(db).ForUser(mustUser(b, "big"))
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

// TestListColumnsAreTheModels: List scans listColumns by position into
// Todo's fields; a column added to the model must be added there too.
func TestListColumnsAreTheModels(t *testing.T) {
	db := bun.NewDB(nil, pgdialect.New())
	var cols []string
	for _, f := range db.Table(reflect.TypeFor[Todo]()).Fields {
		cols = append(cols, f.Name)
	}
	if got := strings.Join(cols, ", "); got != listColumns {
		t.Errorf("Todo's columns are %q; List scans %q", got, listColumns)
	}
}

// BenchmarkListPath compares List's two modes (statements prepared once per
// connection, and the simple protocol a transaction pooler needs) with the
// same page read through bun and database/sql, as List did before issue 18.
func BenchmarkListPath(b *testing.B) {
	ctx := context.Background()
	db := seededDB(b, 50)
	for _, p := range []struct {
		name    string
		prepare bool
	}{{"pgx-prepared", true}, {"pgx-simple", false}} {
		us := NewStore(db, pgdb.NewHot(db, p.prepare, zap.NewNop())).ForUser(mustUser(b, "big"))
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if todos, _, err := us.List(ctx, ListOptions{}); err != nil || len(todos) != 50 {
					b.Fatal(len(todos), err)
				}
			}
		})
	}
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			todos := make([]Todo, 0, 51)
			err := db.NewSelect().Model(&todos).Where("?TableAlias.user_id = ?", "big").
				Where("?TableAlias.id > ?", 0).OrderExpr("?TableAlias.id ASC").Limit(51).Scan(ctx)
			if err != nil || len(todos) != 50 {
				b.Fatal(len(todos), err)
			}
		}
	})
}

// BenchmarkCreatePath compares Create (pgx, pgdb.Native) with the same
// insert through bun and database/sql, as Create did before.
func BenchmarkCreatePath(b *testing.B) {
	ctx := context.Background()
	db := seededDB(b, 0)
	us := newStore(db).ForUser(mustUser(b, "writer"))
	b.Run("pgx", func(b *testing.B) {
		for b.Loop() {
			if _, err := us.Create(ctx, "benchmark todo", false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			t := Todo{UserID: "writer", Title: "benchmark todo"}
			if _, err := db.NewInsert().Model(&t).ExcludeColumn("id", "created_at", "updated_at").Returning("*").Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
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
