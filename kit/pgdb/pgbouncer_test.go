package pgdb_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Through PgBouncer in transaction mode (one server connection, so every
// client shares it), pgx's default statement cache breaks — the failure
// this package avoids — while a pool opened by pgdb.Open runs concurrent
// queries with arguments (through bun and through pgdb.Native) and
// transactions without one error.
func TestPgBouncerTransactionPooling(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase("pool"); err != nil {
		t.Fatal(err)
	}
	b := testenv.NewPgBouncer(t, pg, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// pgx's default names its prepared statements after the SQL: the
	// second client finds the first one's statement on the shared server
	// connection.
	var errs []string
	for range 2 {
		c, err := pgx.Connect(ctx, b.URL("pool"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "SELECT $1::int + 1", 1).Scan(&n); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, " "), "prepared statement") {
		t.Fatalf("pgx's statement cache through PgBouncer transaction pooling: errors %q; want a prepared-statement error (is PgBouncer pooling?)", errs)
	}

	db, err := pgdb.Open(b.URL("pool"), pgdb.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE kv (k text PRIMARY KEY, v int)"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				k := fmt.Sprintf("w%d-%d", w, i)
				var err error
				switch i % 4 {
				case 0:
					_, err = db.ExecContext(ctx, "INSERT INTO kv VALUES (?, ?)", k, i)
				case 1:
					var n int
					err = db.QueryRowContext(ctx, "SELECT count(*) FROM kv WHERE v >= ?", i).Scan(&n)
				case 2:
					tx, e := db.BeginTx(ctx, nil)
					if err = e; err == nil {
						if _, err = tx.ExecContext(ctx, "INSERT INTO kv VALUES (?, ?)", k, i); err == nil {
							err = tx.Commit()
						} else {
							_ = tx.Rollback()
						}
					}
				case 3: // pgx's own API on the pool's connection, $n arguments
					err = pgdb.Native(ctx, db, func(c *pgx.Conn) error {
						var n int
						return c.QueryRow(ctx, "SELECT count(*) FROM kv WHERE v >= $1 AND k <> $2", i, k).Scan(&n)
					})
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of 320 queries failed through PgBouncer, first: %s", len(failures), failures[0])
	}
}

// Six replicas migrate at once through PgBouncer in transaction mode: every
// one succeeds and each migration runs exactly once (the first would fail if
// run twice; the second sleeps to widen the window).
func TestMigrateOnceThroughPgBouncer(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase("mig"); err != nil {
		t.Fatal(err)
	}
	b := testenv.NewPgBouncer(t, pg, 4)
	fsys := fstest.MapFS{
		"20240101000000_create.tx.up.sql": {Data: []byte("CREATE TABLE once (replica int)")},
		"20240101000001_fill.tx.up.sql":   {Data: []byte("SELECT pg_sleep(0.3);\n--bun:split\nINSERT INTO once VALUES (1)")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := pgdb.Open(b.URL("mig"), pgdb.Options{MaxOpenConns: 2})
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = pgdb.Migrate(ctx, db, fsys, "oncetest", zap.NewNop())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	db, err := pgdb.Open(b.URL("mig"), pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, applied int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM once").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM oncetest_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || applied != 2 {
		t.Errorf("after six concurrent migrations: %d rows inserted, %d migrations recorded; want 1 and 2", rows, applied)
	}
}
