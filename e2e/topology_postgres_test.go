package e2e

// The stack on Postgres beyond one server (issue 19): every service through
// PgBouncer in transaction pooling mode.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// authsvc and the backend reach Postgres only through PgBouncer in
// transaction mode (10 server connections per database) and migrate through
// it. Under mixed load — todo writes, reads, sign-ins, token fetches,
// sign-outs — nothing fails: no "prepared statement does not exist", no 5xx,
// every acknowledged todo stored once. Afterwards every server connection
// still has the default session state: nothing was SET for a session and
// left for the next client. The backend runs as docs/production.md says to
// behind such a pooler, DB_PREPARED_STATEMENTS=off: the default, auto, also
// works there (kit/pgdb TestHotFallsBackBehindPgBouncer), but the statements
// it prepared before falling back stay on the server connections they
// reached, which the check below would report.
func TestTopologyPgBouncer(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgres(t)
	b := testenv.NewPgBouncer(t, pg, 10)
	// Both proxy limits raised: the session cycles below make two requests
	// on the general limit each, as many as the machine's speed allows.
	s := StartStack(t, Options{Postgres: pg, AuthRateLimit: "100000/m",
		ProxyEnv:   []string{"AUTH_GENERAL_RATE_LIMIT=100000/m"},
		AuthEnv:    []string{"DATABASE_URL=" + b.URL("auth")},
		BackendEnv: []string{"DATABASE_URL=" + b.URL("backend"), "DB_PREPARED_STATEMENTS=off"}})

	writer := signedUpBearer(t, s, "bouncer-writer@example.com")
	s.NewUser(t).SignUp("bouncer-signin@example.com", pw)
	w := startWriteLoad(s.URL, writer, 6, 0)
	defer w.Stop()
	signIns := startSignInLoad(s.URL, []string{s.URL}, "192.0.2.77", "bouncer-signin@example.com", 2, 10*time.Millisecond)
	defer signIns.Stop()
	var wg sync.WaitGroup
	var sessions, reads int
	var mu sync.Mutex
	var failures []string
	stop := time.Now().Add(4 * time.Second)
	wg.Add(2)
	go func() { // sign-in, token, sign-out cycles
		defer wg.Done()
		for i := 0; time.Now().Before(stop); i++ {
			u := s.NewUser(t)
			u.Email = "bouncer-signin@example.com"
			r := u.Do("POST", "/api/auth/sign-in/email", fmt.Sprintf(`{"email":%q,"password":%q}`, u.Email, pw))
			r2 := u.Do("GET", "/api/auth/token", "")
			r3 := u.Do("POST", "/api/auth/sign-out", "{}")
			mu.Lock()
			sessions++
			for _, x := range []Resp{r, r2, r3} {
				if x.Status != http.StatusOK {
					failures = append(failures, "session cycle: "+x.String())
				}
			}
			mu.Unlock()
		}
	}()
	go func() { // reads
		defer wg.Done()
		c := httpClient(10*time.Second, 1)
		for time.Now().Before(stop) {
			r, err := call(c, "GET", s.URL+"/api/v1/todos?limit=50", writer, "")
			mu.Lock()
			reads++
			if err != nil || r.Status != http.StatusOK {
				failures = append(failures, fmt.Sprintf("read: %v %s", err, r))
			}
			mu.Unlock()
		}
	}()
	wg.Wait()
	w.Stop()
	signIns.Stop()

	answered := signIns.Between(time.Time{}, time.Now())
	t.Logf("through PgBouncer (transaction mode) in 4s: writes %s; sign-ins %s; %d sign-in/token/sign-out cycles; %d reads",
		w, statusString(answered), sessions, reads)
	for _, f := range failures[:min(len(failures), 5)] {
		t.Errorf("%s", f)
	}
	for st, n := range answered {
		if st != http.StatusOK {
			t.Errorf("%d sign-ins answered %d, want 200", n, st)
		}
	}
	if w.count(http.StatusCreated) == 0 {
		t.Errorf("no todo written through PgBouncer")
	}
	for st := range 600 {
		if st != http.StatusCreated && w.count(st) > 0 {
			t.Errorf("%d writes answered %d: %s", w.count(st), st, w)
		}
	}
	if acked, lost, dup := w.checkAcked(t); lost+dup > 0 {
		t.Errorf("%d acknowledged todos: %d lost, %d duplicated", acked, lost, dup)
	}
	for _, p := range []*Proc{s.Auth, s.Backend} {
		logs := p.Logs()
		for _, bad := range []string{"prepared statement", "SQLSTATE 26000", "SQLSTATE 42P05", "SQLSTATE 25P02"} {
			if strings.Contains(logs, bad) {
				t.Errorf("%s logged %q under PgBouncer transaction pooling", p.Name, bad)
			}
		}
	}

	// Ten clients each hold a transaction at once, so PgBouncer hands each
	// a different one of its ten server connections: all show the
	// defaults and no named prepared statement.
	for _, dbname := range []string{"auth", "backend"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		arrived, release := make(chan struct{}, 10), make(chan struct{})
		states := make([]string, 10)
		var cw sync.WaitGroup
		for i := range 10 {
			cw.Add(1)
			go func() {
				defer cw.Done()
				states[i] = sessionState(ctx, b.URL(dbname))
				arrived <- struct{}{}
				select { // hold the transaction until all ten have one
				case <-release:
				case <-ctx.Done():
				}
			}()
		}
		for range 10 {
			select {
			case <-arrived:
			case <-ctx.Done():
			}
		}
		close(release)
		cw.Wait()
		cancel()
		pids := map[string]bool{}
		for _, st := range states {
			pid, rest, _ := strings.Cut(st, ": ")
			pids[pid] = true
			if !strings.HasPrefix(rest, `search_path="$user", public statement_timeout=0 `) ||
				!strings.HasSuffix(rest, "isolation=read committed prepared=0") {
				t.Errorf("%s server connection after the load: %s; want the defaults and no prepared statement", dbname, st)
			}
		}
		t.Logf("%s: %d distinct server connections checked", dbname, len(pids))
		if len(pids) != 10 {
			t.Errorf("%s: checked %d distinct server connections, want all 10", dbname, len(pids))
		}
	}
}

// sessionState opens a transaction through url (simple protocol, so it
// prepares nothing itself) and describes its server connection's session;
// the transaction stays open until ctx ends so the connection is not handed
// to another client meanwhile.
func sessionState(ctx context.Context, url string) string {
	c, err := pgx.Connect(ctx, url+"&default_query_exec_mode=simple_protocol")
	if err != nil {
		return err.Error()
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		c.Close(context.Background())
		return err.Error()
	}
	go func() {
		<-ctx.Done()
		_ = tx.Rollback(context.Background())
		c.Close(context.Background())
	}()
	var pid, prepared int
	var sp, st, tz, iso string
	err = tx.QueryRow(ctx, `SELECT pg_backend_pid(), current_setting('search_path'), current_setting('statement_timeout'),
		current_setting('TimeZone'), current_setting('default_transaction_isolation'),
		(SELECT count(*) FROM pg_prepared_statements)`).Scan(&pid, &sp, &st, &tz, &iso, &prepared)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("pid %d: search_path=%s statement_timeout=%s TimeZone=%s isolation=%s prepared=%d", pid, sp, st, tz, iso, prepared)
}

// A primary and a synchronous streaming standby; both services get a
// multi-host DATABASE_URL with target_session_attrs=read-write. Under write
// load the primary is killed (SIGKILL to every process of it) and, after a
// pause standing in for failure detection, the standby is promoted. Writes
// resume without restarting anything, no acknowledged todo is lost, and
// /readyz answers 503 while no writable database is reachable and 200 again
// after the promotion.
func TestTopologyPostgresFailover(t *testing.T) {
	t.Parallel()
	primary, standby := testenv.NewPostgresPair(t, true)
	s := StartStack(t, Options{Postgres: primary,
		AuthEnv:    []string{"DATABASE_URL=" + devenv.MultiHostURL("auth", primary, standby)},
		BackendEnv: []string{"DATABASE_URL=" + devenv.MultiHostURL("backend", primary, standby)}})
	writer := signedUpBearer(t, s, "failover@example.com")

	type probe struct {
		start  time.Time
		status int
	}
	var mu sync.Mutex
	var probes []probe
	stopProbe := make(chan struct{})
	var pw8 sync.WaitGroup
	pw8.Add(1)
	go func() {
		defer pw8.Done()
		c := httpClient(5*time.Second, 1)
		for {
			select {
			case <-stopProbe:
				return
			default:
			}
			t0 := time.Now()
			r, err := call(c, "GET", "http://"+s.Backend.Addr+"/readyz", "", "")
			st := r.Status
			if err != nil {
				st = 0
			}
			mu.Lock()
			probes = append(probes, probe{t0, st})
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	w := startWriteLoad(s.URL, writer, 4, 10*time.Millisecond)
	defer w.Stop()
	time.Sleep(2 * time.Second)
	before := w.count(http.StatusCreated)

	kill := time.Now()
	primary.Kill()
	time.Sleep(1500 * time.Millisecond) // failure detection, by a person or an operator
	promoteAt := time.Now()
	if err := standby.Promote(); err != nil {
		t.Fatalf("promote the standby: %v", err)
	}
	promoted := time.Now()
	atPromotion := w.count(http.StatusCreated)
	resumed, ok := pollUntil(30*time.Second, 10*time.Millisecond, func() bool { return w.count(http.StatusCreated) > atPromotion })
	if !ok {
		t.Fatalf("no write acknowledged within 30s of the promotion: %s", w)
	}
	time.Sleep(2 * time.Second)
	w.Stop()
	close(stopProbe)
	pw8.Wait()

	acked, lost, dup := w.checkAcked(t)
	t.Logf("Postgres failover (synchronous standby): primary killed, standby promoted %v later (pg_promote took %v); "+
		"first write acknowledged %v after pg_promote returned (%v after the kill); writes: %s; %d acknowledged (%d before the kill), %d lost, %d duplicated",
		promoteAt.Sub(kill).Round(time.Millisecond), promoted.Sub(promoteAt).Round(time.Millisecond),
		resumed.Round(time.Millisecond), (promoted.Sub(kill) + resumed).Round(time.Millisecond), w, acked, before, lost, dup)
	if lost+dup > 0 {
		t.Errorf("with a synchronous standby: %d acknowledged todos lost, %d duplicated; want none", lost, dup)
	}
	for st := range 600 {
		if n := w.count(st); n > 0 && st != http.StatusCreated && st != http.StatusServiceUnavailable {
			t.Errorf("%d writes answered %d during the failover, want only 201 or 503: %s", n, st, w)
		}
	}

	// /readyz: 200 before the kill, 503 for every probe that started while
	// no writable server existed (from 200 ms after the kill, for a probe
	// already past its ping, until the promotion began), 200 at the end.
	mu.Lock()
	defer mu.Unlock()
	var down, wrongDown, lastOK int
	for _, p := range probes {
		switch {
		case p.start.Before(kill):
			if p.status != http.StatusOK {
				t.Errorf("/readyz before the kill: %d, want 200", p.status)
			}
		case p.start.After(kill.Add(200*time.Millisecond)) && p.start.Before(promoteAt):
			down++
			if p.status != http.StatusServiceUnavailable {
				wrongDown++
			}
		}
	}
	if down == 0 || wrongDown > 0 {
		t.Errorf("/readyz while no writable Postgres existed: %d of %d probes did not answer 503", wrongDown, down)
	}
	if n := len(probes); n > 0 && probes[n-1].status == http.StatusOK {
		lastOK = 1
	}
	if lastOK == 0 {
		t.Errorf("/readyz after the promotion: not 200 at the end")
	}
	t.Logf("/readyz: %d probes while down, all 503; 200 again after the promotion", down)
}
