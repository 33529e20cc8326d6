package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"time"

	"gatehouse.dev/kit/testenv"
)

// stack is Postgres, Redis, authsvc and backend for the full-stack rows;
// each run of a row starts its own proxy in front of them on proxyAddr (a
// fixed address, because tokens name it as issuer and audience).
type stack struct {
	bin             string // where its authsvc, backend and proxy come from
	stops           []func()
	pgPID, redisPID int
	auth, backend   *proc
	redisURL        string
	authAddr        string
	backendAddr     string
	proxyAddr       string
	baseURL         string // AUTH_BASE_URL: http://proxyAddr
	listToken       string // a user with exactly 50 todos
	listID          string // that user's id
	fastapiDB       string // the FastAPI rows' database (fastapi.go)
	writerToken     string // another user, who gets the created todos
	email, password string // the list user's credentials, for sign-in
}

func (s *stack) stop() {
	for _, p := range []*proc{s.auth, s.backend} {
		p.stop()
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// startStack starts Postgres and Redis with kit (private, free loopback
// ports, throwaway directories swept if we die), then authsvc and backend
// from bin as e2e does, and creates the users and todos the rows need. The
// *-before rows get a second stack of their own, from -before-bin, so the
// two never share a database, a Redis or a process's CPU count.
func startStack(ctx context.Context, e *env, bin string) (*stack, error) {
	s := &stack{bin: bin}
	pg, stopPG, err := testenv.StartPostgres()
	if err != nil {
		return s, fmt.Errorf("postgres: %w", err)
	}
	s.stops = append(s.stops, stopPG)
	rd, stopRedis, err := testenv.StartRedis()
	if err != nil {
		return s, fmt.Errorf("redis: %w", err)
	}
	s.stops = append(s.stops, stopRedis)
	s.redisURL = rd.URL()
	// The before stack's servers are children of ours too: never count
	// the first stack's Postgres or Redis as its.
	var taken []int
	if e.stack != nil {
		taken = []int{e.stack.pgPID, e.stack.redisPID}
	}
	if s.pgPID, err = childByComm("postgres", taken...); err != nil {
		return s, err
	}
	if s.redisPID, err = childByComm("redis-server", taken...); err != nil {
		return s, err
	}
	for _, db := range []string{"auth", "todos", "fastapi"} {
		if err := pg.CreateDatabase(db); err != nil {
			return s, err
		}
	}
	if s.proxyAddr, err = freeAddr(); err != nil {
		return s, err
	}
	s.baseURL = "http://" + s.proxyAddr
	s.fastapiDB = pg.URL("fastapi")
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	// Metrics listeners get their own free ports: authsvc reads an empty
	// AUTHSVC_METRICS_ADDR as "unset" (default :9092), and two runs must not
	// collide.
	authAddr, authMetrics, backAddr, backMetrics, err := fourAddrs()
	if err != nil {
		return s, err
	}
	s.authAddr, s.backendAddr = authAddr, backAddr
	authEnv := []string{
		"AUTHSVC_ADDR=" + authAddr, "AUTHSVC_METRICS_ADDR=" + authMetrics,
		"DATABASE_URL=" + pg.URL("auth"), "REDIS_URL=" + s.redisURL,
		"AUTH_SECRET=" + hex.EncodeToString(secret), "AUTH_BASE_URL=" + s.baseURL,
		"JWT_TTL=1h", "LOG_LEVEL=" + e.cfg.LogLevel,
	}
	if !e.cfg.ProdArgon {
		authEnv = append(authEnv, "PASSWORD_HASH_MEMORY_KIB=1024", "PASSWORD_HASH_ITERATIONS=1")
	}
	if s.auth, err = startProc("authsvc", e.work, filepath.Join(bin, "authsvc"), nil, authEnv); err != nil {
		return s, err
	}
	if err := s.auth.waitHTTP(ctx, "http://"+authAddr+"/readyz", http.StatusOK, 30*time.Second); err != nil {
		return s, err
	}
	s.backend, err = startProc("backend", e.work, filepath.Join(bin, "backend"), nil, append([]string{
		"BACKEND_ADDR=" + backAddr, "BACKEND_METRICS_ADDR=" + backMetrics,
		"DATABASE_URL=" + pg.URL("todos"), "LOG_LEVEL=" + e.cfg.LogLevel,
	}, e.cfg.BackendEnv...)) // last, so an experiment's value wins
	if err != nil {
		return s, err
	}
	if err := s.backend.waitHTTP(ctx, "http://"+backAddr+"/readyz", http.StatusOK, 30*time.Second); err != nil {
		return s, err
	}

	s.password = "bench-password-" + hex.EncodeToString(secret[:4])
	s.email = "list@gatebench.invalid"
	listID, listToken, err := s.signUp(ctx, "http://"+authAddr, s.email)
	if err != nil {
		return s, err
	}
	_, writerToken, err := s.signUp(ctx, "http://"+authAddr, "writer@gatebench.invalid")
	if err != nil {
		return s, err
	}
	s.listToken, s.writerToken, s.listID = listToken, writerToken, listID
	for i := range 50 {
		body := fmt.Sprintf(`{"title":"benchmark todo %02d","completed":%t}`, i+1, i%3 == 0)
		if err := post(ctx, "http://"+backAddr+"/api/v1/todos", body, http.StatusCreated,
			map[string]string{"X-User-ID": listID}); err != nil {
			return s, fmt.Errorf("create todo: %w", err)
		}
	}
	// list50 must list exactly 50: the create row writes to the other user.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+backAddr+"/api/v1/todos?limit=100", nil)
	req.Header.Set("X-User-ID", listID)
	var list []json.RawMessage
	if err := doJSON(http.DefaultClient, req, http.StatusOK, &list); err != nil {
		return s, fmt.Errorf("list todos: %w", err)
	}
	if len(list) != 50 {
		return s, fmt.Errorf("list user has %d todos, want 50", len(list))
	}
	return s, nil
}

func fourAddrs() (a, b, c, d string, err error) {
	out := make([]string, 4)
	for i := range out {
		if out[i], err = freeAddr(); err != nil {
			return
		}
	}
	return out[0], out[1], out[2], out[3], nil
}

// signUp creates a user as a browser would (Origin = AUTH_BASE_URL) and
// trades the session cookie for a JWT at /api/auth/token.
func (s *stack) signUp(ctx context.Context, authURL, email string) (userID, jwt string, err error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]string{"name": "Bench", "email": email, "password": s.password})
	req, _ := http.NewRequestWithContext(ctx, "POST", authURL+"/api/auth/sign-up/email", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.baseURL)
	var up struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := doJSON(client, req, http.StatusOK, &up); err != nil {
		return "", "", fmt.Errorf("sign-up: %w", err)
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", authURL+"/api/auth/token", nil)
	var tok struct {
		Token string `json:"token"`
	}
	if err := doJSON(client, req, http.StatusOK, &tok); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	if up.User.ID == "" || tok.Token == "" {
		return "", "", fmt.Errorf("sign-up gave user id %q and token of %d bytes", up.User.ID, len(tok.Token))
	}
	return up.User.ID, tok.Token, nil
}

func doJSON(client *http.Client, req *http.Request, want int, v any) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s, want %d: %s", req.Method, req.URL.Path, resp.Status, want, b)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

func post(ctx context.Context, url, body string, want int, headers map[string]string) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return doJSON(http.DefaultClient, req, want, nil)
}

// startStackProxy starts bin/proxy in front of the stack as in production
// (JWKS from authsvc, Redis rate limits), with AUTH_RATE_LIMIT high enough
// that the sign-in row measures sign-in, not the limiter.
func startStackProxy(ctx context.Context, e *env, r row) (*front, error) {
	s := e.stackFor(r)
	return startProxyFor(ctx, e, s, r, "http://"+s.backendAddr)
}

// stackFor is the stack row r runs on: the before stack for the *-before rows.
func (e *env) stackFor(r row) *stack {
	if r.Before {
		return e.before
	}
	return e.stack
}

// startProxyFor is startStackProxy with another backend (fastapi.go).
func startProxyFor(ctx context.Context, e *env, s *stack, r row, backendURL string) (*front, error) {
	metricsEnv, pprofURL, err := e.metricsEnv(r)
	if err != nil {
		return nil, err
	}
	p, err := startProc("proxy", e.work, filepath.Join(s.bin, "proxy"), nil, append(append(metricsEnv,
		"PROXY_ADDR="+s.proxyAddr,
		"BACKEND_URL="+backendURL, "AUTHSVC_URL=http://"+s.authAddr,
		"JWKS_URL=http://"+s.authAddr+"/api/auth/jwks",
		"REDIS_URL="+s.redisURL, "JWT_ISSUER="+s.baseURL, "JWT_AUDIENCE="+s.baseURL,
		// AUTH_GENERAL_RATE_LIMIT is the proxy's looser limit on the rest
		// of /api/auth/*; raised too in case it ever covers sign-in.
		"AUTH_RATE_LIMIT=1000000/m", "AUTH_GENERAL_RATE_LIMIT=1000000/m", "LOG_LEVEL="+e.cfg.LogLevel,
	), e.cfg.ProxyEnv...))
	if err != nil {
		return nil, err
	}
	f := &front{url: s.baseURL, procs: []*proc{p}, proxyRoots: []int{p.pid()},
		otherRoots: []int{s.auth.pid(), s.backend.pid(), s.pgPID, s.redisPID}, pprofURL: pprofURL,
		parts: []part{{"backend", s.backend.pid()}, {"postgres", s.pgPID}, {"authsvc", s.auth.pid()}, {"redis", s.redisPID}}}
	return f, p.waitHTTP(ctx, f.url+"/readyz", http.StatusOK, 15*time.Second)
}

func listLoad(e *env, r row) load {
	return load{Method: "GET", Path: "/api/v1/todos",
		Headers: map[string]string{"Authorization": "Bearer " + e.stackFor(r).listToken}}
}

func createLoad(e *env, r row) load {
	return load{Method: "POST", Path: "/api/v1/todos", Body: `{"title":"created by gatebench"}`,
		Headers: map[string]string{"Authorization": "Bearer " + e.stackFor(r).writerToken, "Content-Type": "application/json"}}
}

func signinLoad(e *env, _ row) load {
	body, _ := json.Marshal(map[string]string{"email": e.stack.email, "password": e.stack.password})
	return load{Method: "POST", Path: "/api/auth/sign-in/email", Body: string(body),
		Headers: map[string]string{"Content-Type": "application/json", "Origin": e.stack.baseURL}}
}
