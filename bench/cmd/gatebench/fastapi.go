package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"gatehouse.dev/kit/devenv"
)

// The two FastAPI rows (docs/migrating.md): the seed's shape, FastAPI
// verifying HS256 itself with python-jose and reached directly, and the
// same app with its JWT code deleted behind our proxy as deployed (EdDSA
// through authsvc's JWKS, Redis). Both list the same 50 todos from one
// Postgres database, through uvicorn with 2 workers (uvloop and httptools
// from Debian).

// fastapiDir is examples/fastapi, found next to the -bin directory (the
// repository's bin/).
func fastapiDir(e *env) (string, error) {
	bin, err := filepath.Abs(e.cfg.Bin)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(filepath.Dir(bin), "examples", "fastapi")
	if _, err := os.Stat(filepath.Join(dir, "serve.py")); err != nil {
		return "", fmt.Errorf("FastAPI rows: %v (run gatebench with -bin pointing at the repository's bin/)", err)
	}
	return dir, nil
}

// startFastAPI runs examples/fastapi/serve.py on appDir with env.
func startFastAPI(ctx context.Context, e *env, name, appDir string, env []string) (*proc, string, error) {
	if err := devenv.Install(devenv.TestPackages["fastapi"]...); err != nil {
		return nil, "", err
	}
	dir, err := fastapiDir(e)
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	level := e.cfg.LogLevel
	if level == "" {
		level = "warning"
	}
	p, err := startProc(name, e.work, filepath.Join(dir, "serve.py"), []string{filepath.Join(dir, appDir)}, append(env,
		"DATABASE_URL="+e.stack.fastapiDB, "BACKEND_ADDR="+addr, "WEB_CONCURRENCY=2", "LOG_LEVEL="+level))
	if err != nil {
		return nil, "", err
	}
	if err := p.waitHTTP(ctx, "http://"+addr+"/readyz", http.StatusOK, 30*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// fillTodos makes sure the caller (headers) has exactly 50 todos at url.
func fillTodos(ctx context.Context, url string, headers map[string]string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/todos?limit=100", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	var list []json.RawMessage
	if err := doJSON(http.DefaultClient, req, http.StatusOK, &list); err != nil {
		return err
	}
	for i := len(list); i < 50; i++ {
		body := fmt.Sprintf(`{"title":"benchmark todo %02d","completed":%t}`, i+1, i%3 == 0)
		if err := post(ctx, url+"/api/v1/todos", body, http.StatusCreated, headers); err != nil {
			return err
		}
	}
	if len(list) > 50 {
		return fmt.Errorf("%s: the user has %d todos, want 50", url, len(list))
	}
	return nil
}

// startFastAPISeed: the seed's shape, verifying the HS256 token the micro
// rows use (JWT_SECRET, iss and aud as our proxy checks them) with python-jose.
func startFastAPISeed(ctx context.Context, e *env, _ row) (*front, error) {
	p, url, err := startFastAPI(ctx, e, "fastapi-seed", "seed", []string{
		"JWT_SECRET=" + e.signer.secret, "JWT_ISSUER=" + benchIssuer, "JWT_AUDIENCE=" + benchAudience,
	})
	if err != nil {
		return nil, err
	}
	f := &front{url: url, procs: []*proc{p}, proxyRoots: []int{p.pid()}, otherRoots: []int{e.stack.pgPID}}
	return f, fillTodos(ctx, url, map[string]string{"Authorization": "Bearer " + e.reused["HS256"]})
}

// startFastAPIProxy: the app without JWT code, behind our proxy set up as
// for the list50 row; the list user's authsvc token.
func startFastAPIProxy(ctx context.Context, e *env, r row) (*front, error) {
	app, url, err := startFastAPI(ctx, e, "fastapi", ".", nil)
	if err != nil {
		return nil, err
	}
	if err := fillTodos(ctx, url, map[string]string{"X-User-ID": e.stack.listID}); err != nil {
		app.stop()
		return nil, err
	}
	f, err := startProxyFor(ctx, e, e.stack, r, url)
	if f != nil {
		f.procs = append(f.procs, app)
		f.otherRoots = []int{app.pid(), e.stack.auth.pid(), e.stack.pgPID, e.stack.redisPID}
	} else {
		app.stop()
	}
	return f, err
}

func fastapiListLoad(e *env, _ row) load {
	return load{Method: "GET", Path: "/api/v1/todos",
		Headers: map[string]string{"Authorization": "Bearer " + e.reused["HS256"]}}
}
