// Package e2e runs the built services as real processes — authsvc, backend,
// proxy and web — against real Postgres and Redis, and talks to them only
// through the proxy, as a user would.
package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds every service once per test binary into a temporary
// directory (go's build cache makes this cheap after the first time),
// removed when the test binary exits.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = testenv.BuildDir("e2e")
		if buildErr != nil {
			return
		}
		for _, svc := range []string{"authsvc", "backend", "proxy", "web"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, svc), "gatehouse.dev/"+svc)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", svc, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Proc is one running service.
type Proc struct {
	Name, Addr string
	cmd        *exec.Cmd
	env        []string
	bin        string
	mu         sync.Mutex
	logs       strings.Builder
	done       chan error
}

func (p *Proc) start(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, p.env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
	p.done = make(chan error, 1)
	go func(done chan error, cmd *exec.Cmd) {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text())
			p.logs.WriteByte('\n')
			p.mu.Unlock()
		}
		done <- cmd.Wait()
	}(p.done, p.cmd)
}

// Logs returns everything the process wrote so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stop sends SIGTERM and waits for exit.
func (p *Proc) Stop(t testing.TB) error {
	t.Helper()
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.cmd = nil
		return fmt.Errorf("%s did not stop within 20s", p.Name)
	}
}

// Kill stops the process with SIGKILL, as a crash would.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Restart starts the process again with the same environment.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	p.start(t)
	p.WaitReady(t)
}

// WaitReady polls /readyz (/healthz for web) until 200.
func (p *Proc) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.Addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited during start-up: %v\n%s", p.Name, err, p.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready at %s:\n%s", p.Name, p.Addr, p.Logs())
}

// Options change how a stack is started.
type Options struct {
	JWTTTL         string   // authsvc JWT_TTL; default 15m
	AuthRateLimit  string   // proxy AUTH_RATE_LIMIT; default 1000/m so tests are not limited by accident
	WithWeb        bool     // also start the demo frontend behind the proxy
	ProxyEnv       []string // extra proxy environment
	AuthEnv        []string // extra authsvc environment
	BackendEnv     []string
	SharedRedisURL string // default: a dedicated Redis for this stack
	RecordBackend  bool   // put a recording relay (Stack.Seen) between proxy and backend
	// Postgres, when set, holds both services' databases (two new ones on
	// it) so a test can stop and restart it; default: the shared server.
	Postgres *devenv.Postgres
	WebEnv   []string // extra web environment (with WithWeb)
}

// Stack is one complete Gatehouse on loopback.
type Stack struct {
	URL                       string // the proxy: the only entry
	Auth, Backend, Proxy, Web *Proc
	AuthDBURL, BackendDBURL   string
	RedisURL                  string
	Seen                      *Recorder // what reached the backend; nil unless Options.RecordBackend
	procs                     []*Proc
}

// StartStack starts authsvc, backend, (web) and proxy on fresh databases and
// a dedicated Redis, and stops them when the test ends. Process logs are
// printed when the test fails.
func StartStack(t testing.TB, o Options) *Stack {
	t.Helper()
	bins := binaries(t)
	if o.JWTTTL == "" {
		o.JWTTTL = "15m"
	}
	if o.AuthRateLimit == "" {
		o.AuthRateLimit = "1000/m"
	}
	s := &Stack{RedisURL: o.SharedRedisURL}
	if o.Postgres != nil {
		s.AuthDBURL, s.BackendDBURL = dedicatedDatabase(t, o.Postgres, "auth"), dedicatedDatabase(t, o.Postgres, "backend")
	} else {
		s.AuthDBURL, s.BackendDBURL = testenv.Database(t), testenv.Database(t)
	}
	if s.RedisURL == "" {
		s.RedisURL = testenv.NewRedis(t).URL()
	}
	proxyAddr := testenv.FreeAddr(t)
	s.URL = "http://" + proxyAddr
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	mk := func(name string, env ...string) *Proc {
		p := &Proc{Name: name, Addr: testenv.FreeAddr(t), bin: filepath.Join(bins, name)}
		if name == "proxy" {
			p.Addr = proxyAddr
		}
		p.env = append(env, "LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=5s")
		s.procs = append(s.procs, p)
		return p
	}
	s.Auth = mk("authsvc", append([]string{
		"DATABASE_URL=" + s.AuthDBURL, "REDIS_URL=" + s.RedisURL,
		"AUTH_SECRET=" + hex.EncodeToString(secret), "AUTH_BASE_URL=" + s.URL,
		"JWT_TTL=" + o.JWTTTL, "AUTHSVC_METRICS_ADDR=",
		// OWASP's minimum argon2id cost is exercised by authsvc's own tests;
		// here the cheapest allowed keeps the suite fast on two cores.
		"PASSWORD_HASH_MEMORY_KIB=1024", "PASSWORD_HASH_ITERATIONS=1",
	}, o.AuthEnv...)...)
	s.Auth.env = append(s.Auth.env, "AUTHSVC_ADDR="+s.Auth.Addr)
	s.Backend = mk("backend", append([]string{"DATABASE_URL=" + s.BackendDBURL, "BACKEND_METRICS_ADDR="}, o.BackendEnv...)...)
	s.Backend.env = append(s.Backend.env, "BACKEND_ADDR="+s.Backend.Addr)
	backendAddr := s.Backend.Addr
	if o.RecordBackend {
		s.Seen = startRecorder(t, s.Backend.Addr)
		backendAddr = s.Seen.Addr
	}
	proxyEnv := []string{
		"PROXY_ADDR=" + proxyAddr, "PROXY_METRICS_ADDR=",
		"BACKEND_URL=http://" + backendAddr, "AUTHSVC_URL=http://" + s.Auth.Addr,
		"REDIS_URL=" + s.RedisURL, "JWT_ISSUER=" + s.URL, "JWT_AUDIENCE=" + s.URL,
		"AUTH_RATE_LIMIT=" + o.AuthRateLimit,
	}
	if o.WithWeb {
		s.Web = mk("web", append([]string{"WEB_METRICS_ADDR="}, o.WebEnv...)...)
		s.Web.env = append(s.Web.env, "WEB_ADDR="+s.Web.Addr)
		proxyEnv = append(proxyEnv, "WEB_URL=http://"+s.Web.Addr)
	}
	s.Proxy = mk("proxy", append(proxyEnv, o.ProxyEnv...)...)

	t.Cleanup(func() {
		for i := len(s.procs) - 1; i >= 0; i-- {
			p := s.procs[i]
			if err := p.Stop(t); err != nil {
				t.Errorf("%s: exit after SIGTERM: %v", p.Name, err)
			}
			if t.Failed() {
				t.Logf("---- %s logs ----\n%s", p.Name, p.Logs())
			}
		}
	})
	for _, p := range s.procs { // the proxy last: it wants authsvc's JWKS
		p.start(t)
		p.WaitReady(t)
	}
	return s
}

// dedicatedDatabase creates database name on pg (which the test owns and
// removes) and returns its URL.
func dedicatedDatabase(t testing.TB, pg *devenv.Postgres, name string) string {
	t.Helper()
	if err := pg.CreateDatabase(name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return pg.URL(name)
}
