package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/outbox"
	"gatehouse.dev/authsvc/migrations"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRelayKeepsEventsUntilRedisTakesThem: an event committed while Redis
// is unreachable stays in the table and reaches the stream once a relay
// can write it; a later announcement waits for its time; a rolled-back
// change leaves no event.
func TestRelayKeepsEventsUntilRedisTakesThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := pgdb.Open(testenv.Database(t), pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := pgdb.Migrate(ctx, db, migrations.FS, "authsvc", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { rdb.Del(ctx, outbox.Stream(prefix)); rdb.Close() })

	if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return outbox.Add(ctx, tx, outbox.UserDeleted, "user-1", time.Now(), time.Now().Add(time.Hour))
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := outbox.Add(ctx, tx, outbox.UserDeleted, "rolled-back"); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("the change failed")
	})

	dead := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	runFor := func(c redis.UniversalClient) {
		rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		outbox.NewRelay(db, c, prefix, zap.NewNop()).Run(rctx)
	}
	runFor(dead)
	var n int
	db.QueryRowContext(ctx, `SELECT count(*) FROM user_events`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d events in the table after a failed relay, want 2 (now and later)", n)
	}

	runFor(rdb)
	entries, err := rdb.XRange(ctx, outbox.Stream(prefix), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Values["user_id"] != "user-1" || entries[0].Values["type"] != outbox.UserDeleted {
		t.Fatalf("stream = %v, want the one due event", entries)
	}
	db.QueryRowContext(ctx, `SELECT count(*) FROM user_events`).Scan(&n)
	if n != 1 {
		t.Errorf("%d events left in the table, want only the later one", n)
	}
}
