package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"gatehouse.dev/kit/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// backendBinary builds this command once per test run, so process tests
// exercise the real binary, signals and all.
func backendBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := testenv.BuildDir("backend")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "backend")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running backend process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *strings.Builder
	mu   *sync.Mutex
	done chan error
}

func startBackend(t *testing.T, dbURL string, extraEnv ...string) *proc {
	t.Helper()
	p := &proc{addr: testenv.FreeAddr(t), logs: &strings.Builder{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	p.cmd = exec.Command(backendBinary(t))
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbURL, "BACKEND_ADDR=" + p.addr, "BACKEND_METRICS_ADDR="}, extraEnv...)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("backend %s logs:\n%s", p.addr, p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("backend exited during start-up: %v\n%s", err, p.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("backend not ready:\n%s", p.log())
}

func TestConcurrentStartMigratesOnce(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	a, b := startBackend(t, dbURL), startBackend(t, dbURL)
	a.waitReady(t)
	b.waitReady(t)

	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied int
	if err := db.QueryRow("SELECT count(*) FROM backend_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("internal/todo/migrations/*.up.sql")
	if applied != len(files) {
		t.Errorf("backend_migrations has %d rows, want %d (each migration once)", applied, len(files))
	}
	for _, p := range []*proc{a, b} {
		c := apiClient{t, "http://" + p.addr, "alice"}
		c.create("from " + p.addr)
	}
	var list []wireTodo
	apiClient{t, "http://" + a.addr, "alice"}.req("GET", "/api/v1/todos", "").json(t, &list)
	if len(list) != 2 {
		t.Errorf("list through one replica has %d todos, want 2", len(list))
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	cmd := exec.Command(backendBinary(t), "migrate")
	cmd.Env = []string{"DATABASE_URL=" + dbURL}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("backend migrate: %v\n%s", err, out)
	}
	db, _ := sql.Open("pgx", dbURL)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM todos").Scan(&n); err != nil {
		t.Fatalf("todos table after migrate: %v", err)
	}
}

// A request in flight when SIGTERM arrives completes with 200, and the
// process then exits 0. The request is held in flight by a table lock.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	p := startBackend(t, dbURL, "DRAIN_DELAY=200ms")
	p.waitReady(t)
	c := apiClient{t, "http://" + p.addr, "alice"}
	c.create("before shutdown")

	db, _ := sql.Open("pgx", dbURL)
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("LOCK TABLE todos IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v1/todos", nil)
		req.Header.Set("X-User-ID", "alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resc <- result{status: resp.StatusCode, body: string(b)}
	}()
	// Wait until the request is blocked on the lock inside Postgres.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		_ = db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%todos%'").Scan(&waiting)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("list request never reached the database")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // past the drain delay: the listener is closing
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	res := <-resc
	if res.err != nil || res.status != 200 || !strings.Contains(res.body, "before shutdown") {
		t.Errorf("in-flight request = %d %q %v, want 200 with the todo", res.status, res.body, res.err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("backend exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("backend did not exit after SIGTERM")
	}
	if !strings.Contains(p.log(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", p.log())
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SHUTDOWN_TIMEOUT": "soon", "DB_MAX_CONNS": "0", "LOG_LEVEL": "info"}
	err := run(context.Background(), nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("run with bad config returned nil")
	}
	for _, want := range []string{"DATABASE_URL", "SHUTDOWN_TIMEOUT", "DB_MAX_CONNS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	env = map[string]string{"DATABASE_URL": "postgres://u:hunter2@/x y"}
	err = run(context.Background(), nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad DATABASE_URL error = %v; want an error that does not echo the password", err)
	}
}

func TestProbeCommand(t *testing.T) {
	t.Parallel()
	p := startBackend(t, testenv.Database(t))
	p.waitReady(t)
	for _, tc := range []struct {
		addr, path string
		ok         bool
	}{
		{p.addr, "/readyz", true},
		{p.addr, "/healthz", true},
		{p.addr, "/metrics", false},
		{testenv.FreeAddr(t), "/readyz", false}, // nothing listening
	} {
		cmd := exec.Command(backendBinary(t), "probe", tc.path)
		cmd.Env = []string{"BACKEND_ADDR=" + tc.addr}
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.ok {
			t.Errorf("probe %s on %s: err=%v %s, want ok=%v", tc.path, tc.addr, err, out, tc.ok)
		}
	}
}
