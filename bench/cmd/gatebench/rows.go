package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"gatehouse.dev/kit/devenv"
)

// benchPath is what every micro row requests: under /api/ and outside
// /api/auth/, so our proxy requires and verifies a token, and the upstream
// answers it like any other path.
const benchPath = "/api/v1/bench"

// env is what the rows share for a whole run.
type env struct {
	cfg      config
	work     string // throwaway directory: logs, scripts, configs, tokens
	helpers  string // built upstream and bareproxy
	upstream *proc
	upURL    string // http://127.0.0.1:port of the upstream
	signer   *signer
	reused   map[string]string // one token per algorithm, sent on every request
	fresh    map[string]string // algorithm → token file
	stack    *stack            // nil unless a stack row was selected
	before   *stack            // the *-before rows' stack, from -before-bin
}

// front is what one run of one row started: the URL wrk hits, the processes
// to stop afterwards, and whose CPU and memory to count.
type front struct {
	url        string
	procs      []*proc
	proxyRoots []int  // the proxy (or the server itself for the direct row): CPU and peak RSS
	otherRoots []int  // everything else serving the row: upstream, backend, authsvc, Postgres, Redis
	parts      []part // otherRoots by name, for the per-process CPU table of the full-stack rows
	pprofURL   string // our proxy's metrics listener, when -pprof names this row
}

// metricsEnv returns PROXY_METRICS_ADDR for our proxy in row r: empty
// (disabled) as in the issue, or, when -pprof names r, a free loopback
// port with PPROF=1 so the run can fetch a CPU profile from it.
func (e *env) metricsEnv(r row) (kv []string, pprofURL string, err error) {
	if e.cfg.Pprof != r.ID {
		return []string{"PROXY_METRICS_ADDR="}, "", nil
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	return []string{"PROXY_METRICS_ADDR=" + addr, "PPROF=1"}, "http://" + addr, nil
}

// part is one named process tree among a row's otherRoots.
type part struct {
	Name string
	Root int
}

// row is one line of the table.
type row struct {
	ID, Title string
	Stack     bool   // needs Postgres, Redis, authsvc and backend
	Before    bool   // runs the services of -before-bin (Stack rows only)
	Ours      bool   // our proxy: its peak RSS is checked against the target
	Fresh     string // algorithm whose fresh-token file the row uses, if any
	Want      int    // status every request must get
	Conns     int    // wrk connections for this row; 0 takes -c
	Idle      bool   // idle-connection row: open -idle-conns keep-alive connections instead of running wrk
	start     func(ctx context.Context, e *env, r row) (*front, error)
	load      func(e *env, r row) load
}

// rows are in table order; ratios and targets refer to them by ID.
var rows = []row{
	{ID: "direct", Title: "upstream, direct (the limit)", Want: 200, start: startDirect, load: plainLoad},
	{ID: "bare", Title: "httputil.ReverseProxy, no auth (the floor)", Want: 200, start: startBare, load: plainLoad},
	{ID: "nginx", Title: "nginx proxy_pass + keepalive, no auth", Want: 200, start: startNginxRow, load: plainLoad},
	{ID: "hs256", Title: "our proxy, HS256, reused token", Ours: true, Want: 200,
		start: ourProxy("HS256"), load: bearerLoad("HS256", false)},
	{ID: "eddsa", Title: "our proxy, EdDSA via JWKS, reused token", Ours: true, Want: 200,
		start: ourProxy("EdDSA"), load: bearerLoad("EdDSA", false)},
	{ID: "eddsa-fresh", Title: "our proxy, EdDSA, fresh token per request", Ours: true, Fresh: "EdDSA", Want: 200,
		start: ourProxy("EdDSA"), load: freshLoad("EdDSA")},
	{ID: "hs256-fresh", Title: "our proxy, HS256, fresh token per request", Ours: true, Fresh: "HS256", Want: 200,
		start: ourProxy("HS256"), load: freshLoad("HS256")},
	{ID: "cookie", Title: "our proxy, EdDSA, reused token in access cookie", Ours: true, Want: 200,
		start: ourProxy("EdDSA"), load: bearerLoad("EdDSA", true)},
	{ID: "bare-2k", Title: "httputil.ReverseProxy, no auth, 2,000 connections", Conns: 2000, Want: 200,
		start: startBare, load: plainLoad},
	{ID: "hs256-2k", Title: "our proxy, HS256, reused token, 2,000 connections", Ours: true, Conns: 2000, Want: 200,
		start: ourProxy("HS256"), load: bearerLoad("HS256", false)},
	{ID: "idle-bare", Title: "httputil.ReverseProxy, idle keep-alive connections", Idle: true, Want: 200,
		start: startBare, load: plainLoad},
	{ID: "idle-hs256", Title: "our proxy, HS256, idle keep-alive connections", Ours: true, Idle: true, Want: 200,
		start: ourProxy("HS256"), load: bearerLoad("HS256", false)},
	{ID: "list50", Title: "full stack: GET /api/v1/todos (50 todos)", Stack: true, Ours: true, Want: 200,
		start: startStackProxy, load: listLoad},
	// The same request to proxy, backend and authsvc built from the commit
	// issue 18 was filed against, in the same run: its targets are ratios
	// to these rows, so neither machine drift nor a changed bare row moves
	// them. Each sits beside its row, and every other repetition runs it
	// first (orderFor), so neither side always follows the heavy rows.
	{ID: "list50-before", Title: "list50 on the services before issue 18 (-before-bin)", Stack: true, Before: true, Want: 200,
		start: startStackProxy, load: listLoad},
	{ID: "fastapi-seed", Title: "FastAPI seed shape: python-jose HS256 in the app, direct (50 todos)", Stack: true, Want: 200,
		start: startFastAPISeed, load: fastapiListLoad},
	{ID: "fastapi-proxy", Title: "FastAPI without JWT code behind our proxy (50 todos)", Stack: true, Ours: true, Want: 200,
		start: startFastAPIProxy, load: listLoad},
	{ID: "create", Title: "full stack: POST /api/v1/todos", Stack: true, Ours: true, Want: 201,
		start: startStackProxy, load: createLoad},
	{ID: "create-before", Title: "create on the services before issue 18 (-before-bin)", Stack: true, Before: true, Want: 201,
		start: startStackProxy, load: createLoad},
	{ID: "signin", Title: "full stack: POST /api/auth/sign-in/email", Stack: true, Ours: true, Want: 200,
		start: startStackProxy, load: signinLoad},
}

func rowIDs() []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

func rowByID(id string) (row, bool) {
	for _, r := range rows {
		if r.ID == id {
			return r, true
		}
	}
	return row{}, false
}

func freeAddr() (string, error) {
	port, err := devenv.FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

func plainLoad(*env, row) load { return load{Method: "GET", Path: benchPath} }

func bearerLoad(alg string, cookie bool) func(*env, row) load {
	return func(e *env, _ row) load {
		h := map[string]string{"Authorization": "Bearer " + e.reused[alg]}
		if cookie {
			// A GET is a safe method: no Origin is needed (SPEC.md, proxy).
			h = map[string]string{"Cookie": "better-auth.access_token=" + e.reused[alg]}
		}
		return load{Method: "GET", Path: benchPath, Headers: h}
	}
}

func freshLoad(alg string) func(*env, row) load {
	return func(e *env, _ row) load {
		return load{Method: "GET", Path: benchPath, TokenPrefix: e.fresh[alg]}
	}
}

func startDirect(_ context.Context, e *env, _ row) (*front, error) {
	return &front{url: e.upURL, proxyRoots: []int{e.upstream.pid()}}, nil
}

// conns is the number of wrk connections of row r.
func (e *env) conns(r row) int {
	if r.Conns > 0 {
		return r.Conns
	}
	return e.cfg.Conns
}

func startBare(ctx context.Context, e *env, r row) (*front, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc("bareproxy", e.work, filepath.Join(e.helpers, "bareproxy"),
		[]string{"-addr", addr, "-target", e.upURL, "-idle", fmt.Sprint(max(1024, e.conns(r)))}, nil)
	if err != nil {
		return nil, err
	}
	f := &front{url: "http://" + addr, procs: []*proc{p}, proxyRoots: []int{p.pid()}, otherRoots: []int{e.upstream.pid()}}
	return f, p.waitHTTP(ctx, f.url+benchPath, http.StatusOK, 10*time.Second)
}

func startNginxRow(ctx context.Context, e *env, _ row) (*front, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startNginx(e.work, addr, strings.TrimPrefix(e.upURL, "http://"))
	if err != nil {
		return nil, err
	}
	f := &front{url: "http://" + addr, procs: []*proc{p}, proxyRoots: []int{p.pid()}, otherRoots: []int{e.upstream.pid()}}
	return f, p.waitHTTP(ctx, f.url+benchPath, http.StatusOK, 10*time.Second)
}

// ourProxy starts bin/proxy in front of the upstream, verifying alg: HS256
// with JWT_SECRET (JWKS_URL empty: disabled), or EdDSA with the JWKS the
// upstream serves. REDIS_URL is empty, so only the in-process limiter runs,
// and it does not apply to /api/v1 anyway.
func ourProxy(alg string) func(context.Context, *env, row) (*front, error) {
	return func(ctx context.Context, e *env, r row) (*front, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		metricsEnv, pprofURL, err := e.metricsEnv(r)
		if err != nil {
			return nil, err
		}
		envv := append(metricsEnv,
			"PROXY_ADDR="+addr,
			"BACKEND_URL="+e.upURL, "AUTHSVC_URL="+e.upURL,
			"JWT_ISSUER="+benchIssuer, "JWT_AUDIENCE="+benchAudience,
			"REDIS_URL=", "LOG_LEVEL="+e.cfg.LogLevel,
		)
		if alg == "HS256" {
			envv = append(envv, "JWT_SECRET="+e.signer.secret, "JWKS_URL=")
		} else {
			envv = append(envv, "JWKS_URL="+e.upURL+"/jwks")
		}
		envv = append(envv, e.cfg.ProxyEnv...) // last, so an experiment's value wins
		p, err := startProc("proxy", e.work, filepath.Join(e.cfg.Bin, "proxy"), nil, envv)
		if err != nil {
			return nil, err
		}
		f := &front{url: "http://" + addr, procs: []*proc{p}, proxyRoots: []int{p.pid()}, otherRoots: []int{e.upstream.pid()}, pprofURL: pprofURL}
		return f, p.waitHTTP(ctx, f.url+"/readyz", http.StatusOK, 15*time.Second)
	}
}
