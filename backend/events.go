package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo"
)

// userEvents consumes authsvc's account events (protocol:
// authsvc/internal/outbox): on "user.deleted" it deletes every todo of the
// user, then acknowledges the entry. Every backend replica reads through
// one consumer group, "backend", so each event is handled once per
// delivery; handling is idempotent, so a redelivery (a replica that died
// before its XACK, or authsvc's deliberate second announcement) is
// harmless.
//
// The group starts at the beginning of the stream, so events published
// while no backend ran — or before this one was first deployed — are
// handled when it starts. An entry stays pending until acknowledged; one
// left pending for over a minute (its consumer died, or the database was
// down) is claimed again with XAUTOCLAIM and retried.
type userEvents struct {
	rdb      redis.UniversalClient
	stream   string
	group    string
	consumer string
	todos    *todo.Store
	log      *zap.Logger
	// reclaimAfter is how long an entry may stay pending before another
	// attempt (XAUTOCLAIM's min-idle-time).
	reclaimAfter time.Duration
	// applied counts events by outcome: deleted, failed (retried later),
	// ignored (unknown type or bad user id).
	applied *prometheus.CounterVec
}

func newUserEvents(rdb redis.UniversalClient, prefix string, todos *todo.Store, log *zap.Logger, reg prometheus.Registerer) *userEvents {
	host, _ := os.Hostname()
	applied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "backend", Name: "user_events_total",
		Help: "Account events from authsvc by outcome (deleted, failed: retried later, ignored: not understood).",
	}, []string{"outcome"})
	reg.MustRegister(applied)
	return &userEvents{applied: applied,
		rdb: rdb, stream: prefix + "user_events", group: "backend",
		consumer: fmt.Sprintf("%s-%d", host, os.Getpid()), todos: todos,
		log: log.With(zap.String("component", "user_events")), reclaimAfter: time.Minute,
	}
}

// run consumes until ctx ends; Redis errors are logged and retried.
func (c *userEvents) run(ctx context.Context) {
	grouped := false
	for ctx.Err() == nil {
		if !grouped {
			// MKSTREAM and id 0: the group sees every event ever published.
			err := c.rdb.XGroupCreateMkStream(ctx, c.stream, c.group, "0").Err()
			if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
				c.pause(ctx, "cannot create the consumer group", err)
				continue
			}
			grouped = true
		}
		if err := c.once(ctx); err != nil && ctx.Err() == nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				grouped = false // the stream was deleted
			}
			c.pause(ctx, "reading user events failed", err)
		}
	}
}

// once handles stale pending entries, then waits up to 5 s for new ones.
func (c *userEvents) once(ctx context.Context) error {
	stale, _, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: c.stream, Group: c.group, Consumer: c.consumer,
		MinIdle: c.reclaimAfter, Start: "0-0", Count: 100,
	}).Result()
	if err != nil {
		return err
	}
	c.handle(ctx, stale)
	res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.group, Consumer: c.consumer, Streams: []string{c.stream, ">"},
		Count: 100, Block: 5 * time.Second,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range res {
		c.handle(ctx, s.Messages)
	}
	return nil
}

func (c *userEvents) handle(ctx context.Context, msgs []redis.XMessage) {
	for _, m := range msgs {
		outcome, err := c.apply(ctx, m)
		c.applied.WithLabelValues(outcome).Inc()
		if err != nil {
			// Not acknowledged: it stays pending and is claimed again later.
			c.log.Warn("user event not applied yet; will retry", zap.String("entry", m.ID), zap.Error(err))
			continue
		}
		if err := c.rdb.XAck(ctx, c.stream, c.group, m.ID).Err(); err != nil {
			c.log.Warn("user event applied but not acknowledged; it will be applied again", zap.Error(err))
		}
	}
}

// apply acts on one event. Events it cannot understand are logged and
// acknowledged: retrying would not help.
func (c *userEvents) apply(ctx context.Context, m redis.XMessage) (outcome string, err error) {
	typ, _ := m.Values["type"].(string)
	raw, _ := m.Values["user_id"].(string)
	if typ != "user.deleted" {
		c.log.Warn("unknown user event type ignored", zap.String("entry", m.ID))
		return "ignored", nil
	}
	uid, err := todo.ParseUserID(raw)
	if err != nil {
		c.log.Error("user.deleted event with an invalid user id ignored", zap.String("entry", m.ID))
		return "ignored", nil
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := c.todos.ForUser(uid).DeleteAll(dctx)
	if err != nil {
		return "failed", err
	}
	c.log.Info("deleted user's todos", zap.String("user_id", uid.String()), zap.Int64("todos", n))
	return "deleted", nil
}

func (c *userEvents) pause(ctx context.Context, msg string, err error) {
	c.log.Warn(msg+"; retrying in 2s", zap.Error(err))
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
}
