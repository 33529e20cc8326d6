// Package outbox tells other services about account changes they must act
// on — today only "user.deleted", on which the backend deletes the user's
// todos — at least once, whether or not they are up at the time.
//
// # Protocol
//
// The backend side (backend/events.go) is written against exactly this;
// change both together. <prefix> is REDIS_PREFIX ("gatehouse:").
//
//   - Redis stream <prefix>user_events; each entry has the fields
//     type ("user.deleted"), user_id and event_id (the outbox row id, for
//     logs). Consumers read it through a consumer group, acknowledge an
//     entry only after acting on it, and must be idempotent: an entry can
//     arrive twice, and every deletion is announced twice on purpose (see
//     below).
//   - The stream is trimmed to about MaxLen entries, far more than a
//     backend outage of days produces; an entry trimmed before it was read
//     would be lost, so MaxLen errs large.
//
// # Delivery
//
// An event is first a row in authsvc's own user_events table, written in
// the same transaction as the change (Add): if the change commits, so does
// the event, even if Redis or the backend is down or authsvc dies the next
// instant. Run moves due rows to the stream (XADD) and deletes a row only
// after Redis accepted it, retrying every few seconds; rows are claimed
// with FOR UPDATE SKIP LOCKED so replicas do not send the same row at once.
// The stream then holds the event until the backend's consumer group has
// read and acknowledged it, so a backend that was down reads it when it
// starts.
//
// A deletion is announced twice: at once, and again when every access
// token of the user has expired (Add's later times). A todo created by a
// request that was in flight while the first event was processed, before
// the proxies learnt of the revocation, is removed by the second.
package outbox

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"go.uber.org/zap"
)

// UserDeleted is the event type announcing that a user no longer exists.
const UserDeleted = "user.deleted"

// MaxLen is the approximate length the stream is trimmed to.
const MaxLen = 1_000_000

// Stream names the Redis stream for prefix.
func Stream(prefix string) string { return prefix + "user_events" }

// Event is one row of the outbox.
type Event struct {
	bun.BaseModel `bun:"table:user_events"`

	ID           int64     `bun:"id,pk,autoincrement"`
	Kind         string    `bun:"kind,notnull"`
	UserID       string    `bun:"user_id,notnull"`
	DeliverAfter time.Time `bun:"deliver_after,notnull"`
	CreatedAt    time.Time `bun:"created_at,notnull"`
}

// Add writes one event of kind for userID per time in at (none means now),
// inside tx, the transaction making the change.
func Add(ctx context.Context, tx bun.IDB, kind, userID string, at ...time.Time) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if len(at) == 0 {
		at = []time.Time{now}
	}
	rows := make([]Event, len(at))
	for i, t := range at {
		rows[i] = Event{Kind: kind, UserID: userID, DeliverAfter: t.UTC(), CreatedAt: now}
	}
	_, err := tx.NewInsert().Model(&rows).Exec(ctx)
	return err
}

// Relay moves due outbox rows into the Redis stream.
type Relay struct {
	db     *bun.DB
	rdb    redis.UniversalClient // nil: events wait in the table
	prefix string
	log    *zap.Logger
	kick   chan struct{}
	every  time.Duration
	// Relayed, when set, is told how many events each round moved
	// (n > 0) or that a round failed (err != nil).
	Relayed func(n int, err error)
}

// NewRelay returns a Relay; rdb may be nil (REDIS_URL unset), when events
// stay in the table until a Relay with Redis runs.
func NewRelay(db *bun.DB, rdb redis.UniversalClient, prefix string, log *zap.Logger) *Relay {
	return &Relay{db: db, rdb: rdb, prefix: prefix, log: log, kick: make(chan struct{}, 1), every: 5 * time.Second}
}

// Kick asks Run to deliver now rather than at its next tick.
func (r *Relay) Kick() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	if r.rdb == nil {
		return
	}
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		for {
			n, err := r.deliver(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("user events not delivered yet; retrying", zap.Error(err))
			}
			if r.Relayed != nil && (n > 0 || err != nil && ctx.Err() == nil) {
				r.Relayed(n, err)
			}
			if err != nil || n < batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

const batch = 100

// deliver sends one batch of due events and reports how many it sent.
func (r *Relay) deliver(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sent := 0
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var due []Event
		err := tx.NewSelect().Model(&due).Where("deliver_after <= ?", time.Now()).
			OrderExpr("id").Limit(batch).For("UPDATE SKIP LOCKED").Scan(ctx)
		if err != nil || len(due) == 0 {
			return err
		}
		ids := make([]int64, 0, len(due))
		_, perr := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range due {
				p.XAdd(ctx, &redis.XAddArgs{
					Stream: Stream(r.prefix), MaxLen: MaxLen, Approx: true,
					Values: []string{"type", e.Kind, "user_id", e.UserID, "event_id", strconv.FormatInt(e.ID, 10)},
				})
				ids = append(ids, e.ID)
			}
			return nil
		})
		if perr != nil {
			return perr // rolled back: the rows stay for the next round
		}
		sent = len(ids)
		_, err = tx.NewDelete().Model((*Event)(nil)).Where("id IN (?)", bun.List(ids)).Exec(ctx)
		return err
	})
	return sent, err
}
