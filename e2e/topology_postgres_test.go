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

	"gatehouse.dev/kit/testenv"
)

// authsvc and the backend reach Postgres only through PgBouncer in
// transaction mode (10 server connections per database) and migrate through
// it. Under mixed load — todo writes, reads, sign-ins, token fetches,
// sign-outs — nothing fails: no "prepared statement does not exist", no 5xx,
// every acknowledged todo stored once. Afterwards every server connection
// still has the default session state: nothing was SET for a session and
// left for the next client.
func TestTopologyPgBouncer(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgres(t)
	b := testenv.NewPgBouncer(t, pg, 10)
	s := StartStack(t, Options{Postgres: pg, AuthRateLimit: "100000/m",
		AuthEnv:    []string{"DATABASE_URL=" + b.URL("auth")},
		BackendEnv: []string{"DATABASE_URL=" + b.URL("backend")}})

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
