package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

const goodRoutes = `
upstreams:
  app:  http://127.0.0.1:8081
  auth: http://127.0.0.1:8082
routes:
  - prefix: /api/auth/
    upstream: auth
    auth: none
    rate_limit: auth
  - prefix: /api/
    upstream: app
  - prefix: /events/
    upstream: app
    timeout: 1h
  - prefix: /
    upstream: app
    auth: optional
identity:
  email: X-User-Email
  role: X-User-Role
cors:
  origins: [https://app.example.com]
  credentials: true
  max_age: 10m
`

func TestRoutesFileGood(t *testing.T) {
	c, err := parseRoutesFile([]byte(goodRoutes), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, r := range c.routes {
		prefixes = append(prefixes, r.prefix)
	}
	if got, want := strings.Join(prefixes, " "), "/api/auth/ /events/ /api/ /"; got != want {
		t.Errorf("routes in lookup order = %q, want %q (longest first)", got, want)
	}
	byPrefix := map[string]routeEntry{}
	for _, r := range c.routes {
		byPrefix[r.prefix] = r
	}
	for _, tt := range []struct {
		prefix  string
		auth    authMode
		limit   rateClass
		timeout time.Duration
		target  string
	}{
		{"/api/auth/", authNone, rateAuth, 30 * time.Second, "http://127.0.0.1:8082"},
		{"/api/", authRequired, rateNone, 30 * time.Second, "http://127.0.0.1:8081"},
		{"/events/", authRequired, rateNone, time.Hour, "http://127.0.0.1:8081"},
		{"/", authOptional, rateNone, 30 * time.Second, "http://127.0.0.1:8081"},
	} {
		r := byPrefix[tt.prefix]
		if r.auth != tt.auth || r.limit != tt.limit || r.timeout != tt.timeout || r.target.String() != tt.target {
			t.Errorf("%s: auth %s, rate_limit %s, timeout %v, target %v; want %s, %s, %v, %s",
				tt.prefix, r.auth, r.limit, r.timeout, r.target, tt.auth, tt.limit, tt.timeout, tt.target)
		}
	}
	if len(c.identity) != 2 || c.identity[0] != (identityHeader{"email", "X-User-Email"}) || c.identity[1] != (identityHeader{"role", "X-User-Role"}) {
		t.Errorf("identity = %v", c.identity)
	}
	if c.cors == nil || c.cors.origins[0] != "https://app.example.com" || !c.cors.credentials || c.cors.maxAge != 10*time.Minute {
		t.Errorf("cors = %+v", c.cors)
	}
}

// TestRoutesFileErrors: every kind of mistake refuses the file with a
// message that names it.
func TestRoutesFileErrors(t *testing.T) {
	const ups = "upstreams:\n  app: http://127.0.0.1:8081\n"
	const route = "routes:\n  - prefix: /\n    upstream: app\n"
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"empty file", "", "the file is empty"},
		{"not YAML", "upstreams: [", "not valid YAML"},
		{"two documents", ups + route + "---\n" + ups, "more than one YAML document"},
		{"unknown top-level key", ups + route + "routez: []\n", "field routez not found"},
		{"unknown route key", ups + "routes:\n  - prefix: /\n    upstream: app\n    auth_mode: none\n", "field auth_mode not found"},
		{"unknown cors key", ups + route + "cors:\n  origins: [https://a.example]\n  allow_all: true\n", "field allow_all not found"},
		{"duplicate YAML key", "upstreams:\n  app: http://127.0.0.1:1\n  app: http://127.0.0.1:2\n" + route, `mapping key "app" already defined`},
		{"wrong type", ups + "routes: {prefix: /}\n", "cannot unmarshal"},
		{"no upstreams", route, "upstreams: want at least one"},
		{"no routes", ups, "routes: want at least one route"},
		{"bad upstream name", "upstreams:\n  App!: http://127.0.0.1:1\n" + route, `name "App!"`},
		{"upstream not a URL", "upstreams:\n  app: 127.0.0.1:8081\n" + route, "is not a base URL"},
		{"upstream with path", "upstreams:\n  app: http://127.0.0.1:8081/v1\n" + route, "is not a base URL"},
		{"upstream with credentials", "upstreams:\n  app: http://u:p@127.0.0.1:8081\n" + route, "is not a base URL"},
		{"upstream ftp", "upstreams:\n  app: ftp://127.0.0.1\n" + route, "is not a base URL"},
		{"unknown upstream", ups + "routes:\n  - prefix: /\n    upstream: nope\n", `unknown upstream "nope"`},
		{"missing upstream", ups + "routes:\n  - prefix: /\n", "upstream is missing"},
		{"missing prefix", ups + "routes:\n  - upstream: app\n", "prefix is missing"},
		{"relative prefix", ups + "routes:\n  - prefix: api/\n    upstream: app\n", "prefix must start with /"},
		{"dot-dot prefix", ups + "routes:\n  - prefix: /a/../b/\n    upstream: app\n", "canonical path"},
		{"encoded slash prefix", ups + "routes:\n  - prefix: /a%2fb/\n    upstream: app\n", "canonical path"},
		{"query in prefix", ups + "routes:\n  - prefix: /a?b\n    upstream: app\n", "canonical path"},
		{"duplicate prefix", ups + route + "  - prefix: /\n    upstream: app\n", "duplicate prefix: also routes[0]"},
		{"bad auth", ups + "routes:\n  - prefix: /\n    upstream: app\n    auth: maybe\n", `auth "maybe": want none, optional or required`},
		{"bad rate_limit", ups + "routes:\n  - prefix: /\n    upstream: app\n    rate_limit: strict\n", `rate_limit "strict": want auth or none`},
		{"bad timeout", ups + "routes:\n  - prefix: /\n    upstream: app\n    timeout: soon\n", `timeout "soon"`},
		{"negative timeout", ups + "routes:\n  - prefix: /\n    upstream: app\n    timeout: -1s\n", `timeout "-1s"`},
		{"huge timeout", ups + "routes:\n  - prefix: /\n    upstream: app\n    timeout: 48h\n", `timeout "48h"`},
		{"identity header not a name", ups + route + "identity:\n  email: \"X User\"\n", `header "X User"`},
		{"identity header reserved", ups + route + "identity:\n  email: X-User-ID\n", "set by the proxy"},
		{"identity header forwarded", ups + route + "identity:\n  email: X-Forwarded-User\n", "set by the proxy"},
		{"identity header twice", ups + route + "identity:\n  email: X-Who\n  name: x-who\n", "also the header of claim email"},
		{"cors without origins", ups + route + "cors:\n  credentials: true\n", "cors: origins: want at least one"},
		{"cors wildcard", ups + route + "cors:\n  origins: ['*']\n", `cors: origins: "*"`},
		{"cors origin with path", ups + route + "cors:\n  origins: [https://a.example/app]\n", "cors: origins"},
		{"cors bad max_age", ups + route + "cors:\n  origins: [https://a.example]\n  max_age: forever\n", `max_age "forever"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRoutesFile([]byte(tt.yaml), 30*time.Second)
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestRoutesFileListsEveryProblem: one file with many mistakes reports all
// of them at once, so an operator fixes the file in one go.
func TestRoutesFileListsEveryProblem(t *testing.T) {
	const bad = `
upstreams:
  app: http://127.0.0.1:8081/path
  ok: http://127.0.0.1:8082
routes:
  - prefix: /api/
    upstream: missing
    auth: sometimes
    timeout: 5 minutes
    colour: blue
  - prefix: /api/
    upstream: ok
    rate_limit: lots
identity:
  email: Authorization
cors:
  origins: [not-an-origin]
`
	_, err := parseRoutesFile([]byte(bad), 30*time.Second)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"field colour not found", `upstreams: app: "http://127.0.0.1:8081/path" is not a base URL`,
		`unknown upstream "missing"`, `auth "sometimes"`, `timeout "5 minutes"`, "duplicate prefix",
		`rate_limit "lots"`, "identity: email: header Authorization", `cors: origins: "not-an-origin"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%s", want, err)
		}
	}
}

// TestRunRefusesBadRoutesFile: the proxy does not start on a bad file (or a
// missing one), and says why, naming the variable and every problem.
func TestRunRefusesBadRoutesFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(bad, []byte("upstreams:\n  app: nope\nroutes:\n  - prefix: /\n    upstream: other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"invalid": bad, "missing": filepath.Join(dir, "absent.yaml")} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{
				"PROXY_ADDR": testenv.FreeAddr(t), "PROXY_METRICS_ADDR": "", "JWKS_URL": "", "JWT_SECRET": string(tokentest.Secret),
				"REDIS_URL": "", "PROXY_ROUTES_FILE": path,
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, nil, envFunc(env), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run started with a bad routes file")
			}
			if !strings.Contains(err.Error(), "PROXY_ROUTES_FILE") {
				t.Errorf("error %q does not name PROXY_ROUTES_FILE", err)
			}
			if name == "invalid" {
				for _, want := range []string{"is not a base URL", `unknown upstream "other"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
			}
		})
	}
}

// TestShippedRoutesFilesAreValid: the routes files in k8s/ (the sidecar
// component's default and the examples) and examples/ are accepted as they are.
func TestShippedRoutesFilesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../k8s/components/sidecar/routes.yaml")
	more, _ := filepath.Glob("../k8s/examples/*/routes.yaml")
	files = append(files, more...)
	more, _ = filepath.Glob("../k8s/examples/*/*/routes.yaml")
	files = append(files, more...)
	more, _ = filepath.Glob("../examples/routes.yaml") // docs/migrating.md
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("found %d shipped routes files, want at least 3: %v", len(files), files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseRoutesFile(data, 30*time.Second); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
