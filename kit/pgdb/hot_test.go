package pgdb_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

// hotLoad runs 8 workers × 40 statements through h: inserts and a read of
// the worker's rows, every one with $n arguments. It returns the failures
// and checks that every acknowledged insert is there exactly once (a rerun
// after a lost statement must not insert twice).
func hotLoad(t *testing.T, ctx context.Context, db *bun.DB, h *pgdb.Hot) []string {
	t.Helper()
	if _, err := db.ExecContext(ctx, "CREATE TABLE hot (w int, i int, PRIMARY KEY (w, i))"); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		acked    = map[string]bool{}
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var err error
				if i%2 == 0 {
					err = h.Run(ctx, func(c *pgx.Conn, mode pgx.QueryExecMode) error {
						_, err := c.Exec(ctx, "INSERT INTO hot (w, i) VALUES ($1, $2)", mode, w, i)
						return err
					})
					if err == nil {
						mu.Lock()
						acked[fmt.Sprint(w, i)] = true
						mu.Unlock()
					}
				} else {
					err = h.Run(ctx, func(c *pgx.Conn, mode pgx.QueryExecMode) error {
						var n int
						return c.QueryRow(ctx, "SELECT count(*) FROM hot WHERE w = $1 AND i < $2", mode, w, i).Scan(&n)
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
	// (w, i) is the key: an insert run twice fails with 23505 and counts
	// among the failures; one lost would leave fewer rows than acknowledged.
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM hot").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(acked) {
		t.Errorf("%d inserts acknowledged, table has %d rows", len(acked), rows)
	}
	return failures
}

// Straight to Postgres, Hot keeps its statements prepared: the server holds
// them, and nothing fails.
func TestHotPreparesDirect(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgdb.Open(testenv.Database(t), pgdb.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := pgdb.NewHot(db, true, zap.NewNop())
	if f := hotLoad(t, ctx, db, h); len(f) > 0 {
		t.Fatalf("%d of 320 statements failed, first: %s", len(f), f[0])
	}
	if !h.Preparing() {
		t.Error("Hot stopped preparing statements on a direct connection")
	}
	var prepared int
	err = h.Run(ctx, func(c *pgx.Conn, _ pgx.QueryExecMode) error {
		return c.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%hot%'", pgx.QueryExecModeSimpleProtocol).Scan(&prepared)
	})
	if err != nil || prepared == 0 {
		t.Errorf("the connection holds %d prepared statements of the load (err %v); want them prepared", prepared, err)
	}
}

// Through PgBouncer in transaction mode, prepared statements are lost or
// collide between clients; Hot notices the first such error, reruns that
// statement with the simple protocol, and uses it from then on: not one
// statement fails, none runs twice, and it says so once in the log.
func TestHotFallsBackBehindPgBouncer(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgres(t)
	if err := pg.CreateDatabase("hot"); err != nil {
		t.Fatal(err)
	}
	b := testenv.NewPgBouncer(t, pg, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgdb.Open(b.URL("hot"), pgdb.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	core, logs := observer.New(zap.WarnLevel)
	h := pgdb.NewHot(db, true, zap.New(core))
	if f := hotLoad(t, ctx, db, h); len(f) > 0 {
		t.Fatalf("%d of 320 statements failed through PgBouncer, first: %s", len(f), f[0])
	}
	if h.Preparing() {
		t.Fatal("Hot still prepares statements through PgBouncer's transaction pooling (did the load never meet the pooler?)")
	}
	if n := logs.FilterMessageSnippet("simple protocol").Len(); n != 1 {
		t.Errorf("%d warnings about the fallback, want 1", n)
	}
}

// With pgx's statement cache turned off in DATABASE_URL there is nothing to
// prepare into: Hot sends the simple protocol rather than fail every call.
func TestHotWithoutStatementCache(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := testenv.Database(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := pgdb.Open(dsn+sep+"statement_cache_capacity=0", pgdb.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := pgdb.NewHot(db, true, zap.NewNop())
	var n int
	err = h.Run(ctx, func(c *pgx.Conn, mode pgx.QueryExecMode) error {
		return c.QueryRow(ctx, "SELECT $1::int + 1", mode, 41).Scan(&n)
	})
	if err != nil || n != 42 {
		t.Fatalf("Hot without a statement cache: %d, %v", n, err)
	}
}
