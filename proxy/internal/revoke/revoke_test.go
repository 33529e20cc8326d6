package revoke_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/kit/wire"
	"gatehouse.dev/proxy/internal/revoke"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is a settable time source.
type clock struct{ unix atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(c.unix.Load(), 0) }

// follow starts a Follower on the shared Redis under a per-test prefix and
// waits for its first read.
func follow(t *testing.T, c *clock) (*revoke.Follower, *redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	f := revoke.New(rdb, revoke.Options{
		Prefix: prefix, PruneEvery: 10 * time.Millisecond, HealthEvery: 50 * time.Millisecond, Now: c.now,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		rdb.Del(context.Background(), wire.RevokedKey(prefix))
		rdb.Close()
	})
	select {
	case <-f.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("never loaded")
	}
	return f, rdb, prefix
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

func TestExpiredEntriesArePruned(t *testing.T) {
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	f, rdb, prefix := follow(t, c)
	now := c.now().Unix()
	ctx := context.Background()
	for _, m := range []string{"a 60", "b 120"} {
		var sid string
		var d int64
		fmt.Sscanf(m, "%s %d", &sid, &d)
		if err := rdb.Publish(ctx, wire.RevocationChannel(prefix), fmt.Sprintf("%s %d", sid, now+d)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both held", func() bool { return f.Len() == 2 })
	c.unix.Store(now + 61) // a's tokens have all expired
	waitFor(t, "a pruned", func() bool { return !f.Revoked("a") })
	if !f.Revoked("b") || f.Len() != 1 {
		t.Errorf("after pruning a: Revoked(b) = %v, Len = %d; want true, 1", f.Revoked("b"), f.Len())
	}
	c.unix.Store(now + 121)
	waitFor(t, "b pruned", func() bool { return f.Len() == 0 })
}

func TestMessages(t *testing.T) {
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	f, rdb, prefix := follow(t, c)
	ctx := context.Background()
	exp := c.now().Unix() + 600
	for _, m := range []string{
		"", "nospace", " 123", "sid-x notanumber", // malformed: ignored
		fmt.Sprintf("sid-past %d", c.now().Unix()-1), // already expired: ignored
		fmt.Sprintf("sid-ok %d", exp),
		fmt.Sprintf("sid-ok %d", exp-300), // an earlier expiry does not shorten it
	} {
		if err := rdb.Publish(ctx, wire.RevocationChannel(prefix), m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "sid-ok held", func() bool { return f.Revoked("sid-ok") })
	// Messages arrive in order: once the last one is seen, every earlier one was handled.
	if err := rdb.Publish(ctx, wire.RevocationChannel(prefix), fmt.Sprintf("sid-last %d", exp)).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sid-last held", func() bool { return f.Revoked("sid-last") })
	if n := f.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (sid-ok, sid-last)", n)
	}
	for _, sid := range []string{"", "sid-past", "sid-x", "nospace"} {
		if f.Revoked(sid) {
			t.Errorf("Revoked(%q) = true", sid)
		}
	}
	c.unix.Store(exp - 299) // past the earlier expiry, before the later one
	time.Sleep(50 * time.Millisecond)
	if !f.Revoked("sid-ok") {
		t.Error("sid-ok pruned at its earlier expiry; the later one must win")
	}
}

func TestNilFollowerRevokesNothing(t *testing.T) {
	var f *revoke.Follower
	if f.Revoked("s") || f.Len() != 0 || f.SubscriptionUp() {
		t.Error("nil Follower must revoke nothing")
	}
	f.Run(context.Background()) // returns at once
}

// TestWatchFiresOnRevocation: a watch on a sid fires when its revocation
// arrives, at once when it is already revoked, never for other sids, and
// not after stop.
func TestWatchFiresOnRevocation(t *testing.T) {
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	f, rdb, prefix := follow(t, c)
	publish := func(sid string) {
		exp := time.Now().Add(time.Hour).Unix()
		ctx := context.Background()
		rdb.ZAdd(ctx, wire.RevokedKey(prefix), redis.Z{Score: float64(exp), Member: sid})
		rdb.Publish(ctx, wire.RevocationChannel(prefix), wire.FormatRevocation(sid, exp))
	}
	mine, stopMine := f.Watch("sid-a")
	defer stopMine()
	other, stopOther := f.Watch("sid-b")
	defer stopOther()
	stopped, stop := f.Watch("sid-a")
	stop()
	publish("sid-a")
	select {
	case <-mine:
	case <-time.After(5 * time.Second):
		t.Fatal("watch on sid-a did not fire")
	}
	select {
	case <-other:
		t.Error("watch on sid-b fired for sid-a")
	case <-stopped:
		t.Error("a stopped watch fired")
	default:
	}
	again, stopAgain := f.Watch("sid-a")
	defer stopAgain()
	select {
	case <-again:
	default:
		t.Error("watch on an already revoked sid did not fire at once")
	}
	if ch, _ := f.Watch(""); ch != nil {
		t.Error("the empty sid got a watch")
	}
	var nilF *revoke.Follower
	if ch, _ := nilF.Watch("x"); ch != nil {
		t.Error("a nil Follower returned a channel")
	}
}
