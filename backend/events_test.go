package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/testenv"
)

// TestUserDeletedEventDeletesTodos: a user.deleted event published while
// no backend runs (the backend was down at delete time) is applied when the
// backend starts; only that user's todos go; a second announcement of the
// same deletion is harmless; events are acknowledged.
func TestUserDeletedEventDeletesTodos(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.Database(t)
	addr := testenv.RedisAddr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		for it := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator(); it.Next(ctx); {
			rdb.Del(ctx, it.Val())
		}
		rdb.Close()
	})
	env := []string{"REDIS_URL=redis://" + addr + "/0", "REDIS_PREFIX=" + prefix}

	// Todos for two users, written while the backend is up.
	p := startBackend(t, dbURL, env...)
	p.waitReady(t)
	for _, u := range []string{"doomed-user", "doomed-user", "other-user"} {
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/api/v1/todos", strings.NewReader(`{"title":"keep me?"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User-ID", u)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("create todo: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	_ = p.cmd.Process.Kill()
	<-p.done

	// The deletion is announced while the backend is down, twice (authsvc
	// announces every deletion again after the JWT lifetime).
	stream := prefix + "user_events"
	for i := 0; i < 2; i++ {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"type", "user.deleted", "user_id", "doomed-user", "event_id", fmt.Sprint(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	metricsAddr := testenv.FreeAddr(t)
	p = startBackend(t, dbURL, append(env, "BACKEND_METRICS_ADDR="+metricsAddr)...)
	p.waitReady(t)
	count := func(user string) int {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v1/todos", nil)
		req.Header.Set("X-User-ID", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []json.RawMessage
		json.NewDecoder(resp.Body).Decode(&list)
		return len(list)
	}
	deadline := time.Now().Add(15 * time.Second)
	for count("doomed-user") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the deleted user's todos are still there\n%s", p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := count("other-user"); n != 1 {
		t.Errorf("other user has %d todos, want 1", n)
	}
	acked := false
	for !acked && time.Now().Before(deadline) {
		pending, err := rdb.XPending(ctx, stream, "backend").Result()
		if err == nil && pending.Count == 0 {
			info, _ := rdb.XInfoGroups(ctx, stream).Result()
			acked = len(info) == 1 && info[0].EntriesRead == 2
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !acked {
		t.Fatal("events not all acknowledged")
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `backend_user_events_total{outcome="deleted"} 2`) {
		t.Errorf("metrics lack backend_user_events_total{outcome=\"deleted\"} 2:\n%s", body)
	}
}
