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
// the table has.
func TestListUsesIndex(t *testing.T) {
	t.Parallel()
	db := seededDB(t, 100_000)
	us := NewStore(db).ForUser(mustUser(t, "big"))
	done := false
	for _, o := range []ListOptions{{}, {After: 50_000}, {Completed: &done, Limit: 100}} {
		// As List sends it: pgx's simple protocol puts the arguments in the
		// text, so Postgres plans for these very values.
		query, args := us.listStatement(o, 50)
		var plan []string
		err := pgdb.Native(context.Background(), db, func(c *pgx.Conn) error {
			rows, err := c.Query(context.Background(), "EXPLAIN "+query, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				plan = append(plan, line)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
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

// BenchmarkListPath compares List (pgx scanning, pgdb.Native) with the same
// page read through bun and database/sql, as List did before, and with a
// pool whose DATABASE_URL asks for cache_statement (direct to Postgres only:
// PgBouncer 1.18 in transaction mode breaks it, docs/production.md).
func BenchmarkListPath(b *testing.B) {
	ctx := context.Background()
	dsn := testenv.Database(b)
	db := seedDB(b, openDB(b, dsn), 50)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	cached := openDB(b, dsn+sep+"default_query_exec_mode=cache_statement")
	for _, p := range []struct {
		name string
		db   *bun.DB
	}{{"pgx", db}, {"pgx-cache-statement", cached}} {
		us := NewStore(p.db).ForUser(mustUser(b, "big"))
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
	us := NewStore(db).ForUser(mustUser(b, "writer"))
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
