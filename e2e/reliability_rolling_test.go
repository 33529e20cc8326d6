package e2e

// Graceful shutdown of every service and a rolling restart of a pair of
// proxies under load, behind a client that behaves like a load balancer.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse.dev/kit/testenv"
)

const drainDelay = time.Second

// lockTable holds an ACCESS EXCLUSIVE lock on table in the database at
// dbURL until the returned release is called (also at test end).
func lockTable(t *testing.T, dbURL, table string) (release func()) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(context.Background())
			_ = conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// On SIGTERM each service flips /readyz to 503 at once, keeps serving for
// DRAIN_DELAY, finishes the request in flight, and exits 0 in time.
func TestReliabilityGracefulShutdown(t *testing.T) {
	t.Parallel()
	dd := "DRAIN_DELAY=" + drainDelay.String()
	s := StartStack(t, Options{WithWeb: true, ProxyEnv: []string{dd}, BackendEnv: []string{dd}, AuthEnv: []string{dd}, WebEnv: []string{dd}})
	bearer := signedUpBearer(t, s, "drain@example.com")
	uid := func() string {
		u := s.NewUser(t)
		u.SignIn("drain@example.com", pw)
		var sess struct{ User struct{ ID string } }
		u.Do("GET", "/api/auth/get-session", "").JSON(t, &sess)
		return sess.User.ID
	}()
	c := httpClient(30*time.Second, 4)

	type inflight struct {
		method, url, bearer, body string
		headers                   []string
		dbURL, table              string // held locked so the request stays in flight
	}
	for _, tc := range []struct {
		p  *Proc
		in *inflight
	}{
		{s.Web, nil},
		{s.Auth, &inflight{"POST", "http://" + s.Auth.Addr + "/api/auth/sign-in/email", "", `{"email":"drain@example.com","password":"` + pw + `"}`,
			[]string{"Origin", s.URL}, s.AuthDBURL, "users"}},
		{s.Backend, &inflight{"GET", "http://" + s.Backend.Addr + "/api/v1/todos", "", "", []string{"X-User-ID", uid}, s.BackendDBURL, "todos"}},
		{s.Proxy, &inflight{"GET", s.URL + "/api/v1/todos", bearer, "", nil, s.BackendDBURL, "todos"}},
	} {
		t.Run(tc.p.Name, func(t *testing.T) {
			p := tc.p
			var inflightDone chan Resp
			var release func()
			if tc.in != nil {
				release = lockTable(t, tc.in.dbURL, tc.in.table)
				inflightDone = make(chan Resp, 1)
				go func() {
					r, err := call(c, tc.in.method, tc.in.url, tc.in.bearer, tc.in.body, tc.in.headers...)
					if err != nil {
						r = Resp{Body: []byte(err.Error())}
					}
					inflightDone <- r
				}()
				time.Sleep(300 * time.Millisecond) // let it reach the database
			}
			// A client pool's spare connection that never sends a request
			// must not hold the exit (net/http alone waits 5 s for it).
			silent, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close()
			time.Sleep(50 * time.Millisecond)
			p.Terminate()
			sigAt := time.Now()
			notReady, ok := pollUntil(drainDelay, 10*time.Millisecond, func() bool {
				r, err := call(c, "GET", "http://"+p.Addr+"/readyz", "", "")
				return err == nil && r.Status == http.StatusServiceUnavailable
			})
			if !ok {
				t.Errorf("/readyz not 503 within %v of SIGTERM", drainDelay)
			}
			// Still serving during the drain delay (a new connection too).
			served := 0
			for time.Since(sigAt) < drainDelay*3/4 {
				fresh := httpClient(5*time.Second, 1)
				if r, err := call(fresh, "GET", "http://"+p.Addr+"/healthz", "", ""); err == nil && r.Status == http.StatusOK {
					served++
				} else {
					t.Errorf("GET /healthz %v after SIGTERM (drain delay %v) = %v %s", time.Since(sigAt), drainDelay, err, r)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if release != nil {
				time.Sleep(time.Until(sigAt.Add(drainDelay + 500*time.Millisecond)))
				release() // the in-flight request may now finish, during Shutdown
			}
			// Deadline: DRAIN_DELAY + SHUTDOWN_TIMEOUT (5s in the harness) + slack.
			err, exited := p.WaitExit(drainDelay + 5*time.Second + 3*time.Second)
			exitAfter := time.Since(sigAt)
			if !exited {
				t.Fatalf("still running %v after SIGTERM", exitAfter)
			}
			// Nothing but the drain delay and the in-flight request (released
			// half a second after it) should stand between SIGTERM and exit;
			// with a silent connection holding Shutdown, net/http alone
			// waits 5 s past the drain. 3 s of slack for a loaded machine.
			bound := drainDelay + 3*time.Second
			if release != nil {
				bound += 500 * time.Millisecond
			}
			if exitAfter > bound {
				t.Errorf("exited %v after SIGTERM with a silent connection open, want within %v", exitAfter.Round(time.Millisecond), bound)
			}
			if err != nil {
				t.Errorf("exit after SIGTERM: %v, want status 0", err)
			}
			msg := "no request in flight"
			if inflightDone != nil {
				r := <-inflightDone
				msg = fmt.Sprintf("request in flight answered %d", r.Status)
				if r.Status != http.StatusOK {
					t.Errorf("request in flight at SIGTERM = %s, want 200", r)
				}
			}
			t.Logf("%s: /readyz 503 %v after SIGTERM, %d requests served while draining, %s, exited (%v) %v after SIGTERM",
				p.Name, notReady.Round(time.Millisecond), served, msg, err, exitAfter.Round(time.Millisecond))
			p.Restart(t)
		})
	}
	if r, err := call(c, "GET", s.URL+"/api/v1/todos", bearer, ""); err != nil || r.Status != http.StatusOK {
		t.Errorf("after restarting every service: %v %s", err, r)
	}
}

// balancer round-robins across proxies, skipping any whose /readyz was not
// 200 at its last poll (every 100ms), like a load balancer's health check.
type balancer struct {
	urls  []string
	ready []atomic.Bool
	next  atomic.Uint64
}

func newBalancer(ctx context.Context, urls ...string) *balancer {
	b := &balancer{urls: urls, ready: make([]atomic.Bool, len(urls))}
	c := httpClient(time.Second, len(urls))
	poll := func() {
		for i, u := range urls {
			r, err := call(c, "GET", u+"/readyz", "", "")
			b.ready[i].Store(err == nil && r.Status == http.StatusOK)
		}
	}
	poll()
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				poll()
			}
		}
	}()
	return b
}

// pick returns the next ready proxy, or -1 when none is.
func (b *balancer) pick() int {
	for range b.urls {
		i := int(b.next.Add(1) % uint64(len(b.urls)))
		if b.ready[i].Load() {
			return i
		}
	}
	return -1
}

// Two proxies in front of one backend, 32 connections of load through a
// readiness-aware balancer: restarting the proxies one at a time (SIGTERM,
// drain, exit, start) loses no request.
func TestReliabilityRollingRestart(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{ProxyEnv: []string{"DRAIN_DELAY=" + drainDelay.String()}})
	bearer := signedUpBearer(t, s, "rolling@example.com")

	// A second proxy: the same configuration on another port (the later
	// PROXY_ADDR wins).
	addr2 := testenv.FreeAddr(t)
	p2 := &Proc{Name: "proxy2", Addr: addr2, bin: filepath.Join(binaries(t), "proxy"),
		env: append(append([]string(nil), s.Proxy.env...), "PROXY_ADDR="+addr2)}
	t.Cleanup(func() {
		if err := p2.Stop(t); err != nil {
			t.Errorf("proxy2: %v", err)
		}
		if t.Failed() {
			t.Logf("---- proxy2 logs ----\n%s", p2.Logs())
		}
	})
	p2.start(t)
	p2.WaitReady(t)
	proxies := []*Proc{s.Proxy, p2}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lb := newBalancer(ctx, "http://"+s.Proxy.Addr, "http://"+addr2)
	const workers = 32
	c := httpClient(15*time.Second, workers*2)
	var (
		sent, okN, noneReady atomic.Int64
		perProxy             [2]atomic.Int64
		mu                   sync.Mutex
		failures             []string
		wg                   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				p := lb.pick()
				if p < 0 {
					noneReady.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				method, path, body, want := "GET", "/api/v1/todos?limit=5", "", http.StatusOK
				if i%4 == 0 {
					method, path, body, want = "POST", "/api/v1/todos", fmt.Sprintf(`{"title":"r-%d-%d"}`, w, i), http.StatusCreated
				}
				sent.Add(1)
				perProxy[p].Add(1)
				r, err := call(c, method, lb.urls[p]+path, bearer, body)
				if err != nil || r.Status != want {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s via proxy %d: %v %s", method, p+1, err, r))
					mu.Unlock()
					continue
				}
				okN.Add(1)
			}
		}(w)
	}

	time.Sleep(time.Second)
	for i, p := range proxies {
		before := sent.Load()
		p.Terminate()
		sigAt := time.Now()
		err, exited := p.WaitExit(drainDelay + 8*time.Second)
		if !exited {
			t.Fatalf("%s still running %v after SIGTERM", p.Name, time.Since(sigAt))
		}
		if err != nil {
			t.Errorf("%s exit after SIGTERM: %v, want 0", p.Name, err)
		}
		exitAfter := time.Since(sigAt)
		p.Restart(t)
		if _, ok := pollUntil(5*time.Second, 20*time.Millisecond, func() bool { return lb.ready[i].Load() }); !ok {
			t.Errorf("balancer never saw %s ready again", p.Name)
		}
		t.Logf("%s: exited %v after SIGTERM, back in rotation %v after SIGTERM; %d requests sent meanwhile",
			p.Name, exitAfter.Round(time.Millisecond), time.Since(sigAt).Round(time.Millisecond), sent.Load()-before)
		time.Sleep(time.Second)
	}
	cancel()
	wg.Wait()

	t.Logf("rolling restart under %d connections: %d requests sent (proxy1 %d, proxy2 %d), %d ok, %d errors, %d waits with no proxy ready",
		workers, sent.Load(), perProxy[0].Load(), perProxy[1].Load(), okN.Load(), len(failures), noneReady.Load())
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... and %d more", len(failures)-10)
			break
		}
		t.Errorf("lost request: %s", f)
	}
}
