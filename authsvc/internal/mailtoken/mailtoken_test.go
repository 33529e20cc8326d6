package mailtoken_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/mailtoken"
	"gatehouse.dev/authsvc/migrations"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newDB(t *testing.T) *bun.DB {
	t.Helper()
	ctx := context.Background()
	db, err := pgdb.Open(testenv.Database(t), pgdb.Options{MaxOpenConns: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := pgdb.Migrate(ctx, db, migrations.FS, "authsvc", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO users (id, name, email, password_hash, created_at, updated_at)
		VALUES ('u1', 'U', 'u1@example.test', '', now(), now()), ('u2', 'U', 'u2@example.test', '', now(), now())`)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestConsumeOnce: of many concurrent uses of one token exactly one wins.
func TestConsumeOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newDB(t)
	s := mailtoken.NewStore(db)
	tok, _, err := s.Issue(ctx, mailtoken.ResetPassword, "u1", "u1@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Peek(ctx, mailtoken.VerifyEmail, tok); !errors.Is(err, mailtoken.ErrInvalid) {
		t.Errorf("token for another purpose: %v, want ErrInvalid", err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := mailtoken.NewStore(tx).Consume(ctx, mailtoken.ResetPassword, tok); err == nil {
					wins.Add(1)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Errorf("%d concurrent uses succeeded, want 1", n)
	}
}

// TestSupersedeKeepsTheNewest: after two issues, whichever mail finishes
// first, only the newer token works; a discarded one never does, and
// another user's tokens are untouched.
func TestSupersedeKeepsTheNewest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mailtoken.NewStore(newDB(t))
	old, oldID, _ := s.Issue(ctx, mailtoken.ResetPassword, "u1", "u1@example.test")
	newer, newID, _ := s.Issue(ctx, mailtoken.ResetPassword, "u1", "u1@example.test")
	other, _, _ := s.Issue(ctx, mailtoken.ResetPassword, "u2", "u2@example.test")
	failed, failedID, _ := s.Issue(ctx, mailtoken.VerifyEmail, "u1", "u1@example.test")
	// The newer mail finishes first, then the older one.
	if err := s.Supersede(ctx, mailtoken.ResetPassword, "u1", newID); err != nil {
		t.Fatal(err)
	}
	_ = s.Supersede(ctx, mailtoken.ResetPassword, "u1", oldID)
	_ = s.Discard(ctx, failedID)
	for _, c := range []struct {
		name string
		p    mailtoken.Purpose
		tok  string
		ok   bool
	}{
		{"older", mailtoken.ResetPassword, old, false},
		{"newer", mailtoken.ResetPassword, newer, true},
		{"another user's", mailtoken.ResetPassword, other, true},
		{"discarded", mailtoken.VerifyEmail, failed, false},
	} {
		_, err := s.Peek(ctx, c.p, c.tok)
		if (err == nil) != c.ok {
			t.Errorf("%s token: err = %v, want usable=%v", c.name, err, c.ok)
		}
	}
}
