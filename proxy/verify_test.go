package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
	"gatehouse.dev/proxy/internal/token/tokentest"
)

// verifyServer starts the forward-auth listener of h's proxy.
func verifyServer(t *testing.T, h *harness) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h.s.verifyHandler)
	t.Cleanup(s.Close)
	return s
}

func verifyAsk(t *testing.T, base string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	return verifyAt(t, base+"/verify", hdr)
}

func verifyAt(t *testing.T, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestVerifyListener: the forward-auth listener gives the proxy's own
// verdicts, for the built-in routing and for a routes file, and never
// forwards anything.
func TestVerifyListener(t *testing.T) {
	for _, mode := range []string{"built-in", "routes file"} {
		t.Run(mode, func(t *testing.T) {
			o := harnessOpt{env: map[string]string{"AUTH_RATE_LIMIT": "2/m"}}
			if mode == "routes file" {
				o.routes = routesYAML(identityRoutes)
			}
			h := newHarness(t, o)
			v := verifyServer(t, h)
			c := tokentest.Claims("u-verify")
			c["email"] = "v@example.com"
			tok := h.keys["EdDSA"].Sign(t, c, nil)
			for _, tt := range []struct {
				name       string
				hdr        http.Header
				want       int
				user, hdr2 string
			}{
				{"api, no token", http.Header{"X-Forwarded-Uri": {"/api/v1/todos"}}, 401, "", ""},
				{"api, token", http.Header{"X-Forwarded-Uri": {"/api/v1/todos?x=1"}, "Authorization": {"Bearer " + tok}}, 200, "u-verify", "v@example.com"},
				{"api, X-Original-URI", http.Header{"X-Original-Uri": {"/api/v1/todos"}, "Authorization": {"Bearer " + tok}}, 200, "u-verify", "v@example.com"},
				{"api, bad token", http.Header{"X-Forwarded-Uri": {"/api/v1/todos"}, "Authorization": {"Bearer a.b.c"}}, 401, "", ""},
				{"auth route, no token", http.Header{"X-Forwarded-Uri": {"/api/auth/get-session"}}, 200, "", ""},
				{"path trick", http.Header{"X-Forwarded-Uri": {"/api/auth/../v1/todos"}}, 400, "", ""},
				{"encoded path trick", http.Header{"X-Forwarded-Uri": {"/api/auth/%2e%2e/v1/todos"}}, 400, "", ""},
				{"absolute URI", http.Header{"X-Forwarded-Uri": {"http://evil/api/auth/x"}}, 400, "", ""},
				{"ingress-nginx X-Original-URL", http.Header{"X-Original-Url": {"https://app.example.com/api/v1/todos?a=b"}, "Authorization": {"Bearer " + tok}}, 200, "u-verify", "v@example.com"},
				{"ingress-nginx X-Original-URL, no token", http.Header{"X-Original-Url": {"https://app.example.com/api/v1/todos"}}, 401, "", ""},
				{"X-Original-URL path trick", http.Header{"X-Original-Url": {"https://app.example.com/api/auth/%2e%2e/v1/todos"}}, 400, "", ""},
				{"X-Original-URL not http", http.Header{"X-Original-Url": {"javascript:alert(1)"}}, 400, "", ""},
				{"cookie POST from a foreign origin", http.Header{"X-Forwarded-Uri": {"/api/v1/todos"}, "X-Forwarded-Method": {"POST"},
					"Cookie": {"better-auth.access_token=" + tok}, "Origin": {"https://evil.example"}}, 403, "", ""},
				{"cookie GET", http.Header{"X-Forwarded-Uri": {"/api/v1/todos"}, "Cookie": {"better-auth.access_token=" + tok}}, 200, "u-verify", "v@example.com"},
				{"spoofed identity is not echoed", http.Header{"X-Forwarded-Uri": {"/api/auth/ok"}, "X-User-Id": {"root"}}, 200, "", ""},
				// ingress-nginx sets X-Original-URL and passes the client's own
				// X-Forwarded-Uri through: a harmless path named by the client
				// must not be judged in place of the real one.
				{"client X-Forwarded-Uri against the ingress's X-Original-URL",
					http.Header{"X-Original-Url": {"https://app.example.com/api/v1/todos"}, "X-Forwarded-Uri": {"/api/auth/ok"}}, 400, "", ""},
				{"client X-Original-URI against X-Forwarded-Uri",
					http.Header{"X-Forwarded-Uri": {"/api/v1/todos"}, "X-Original-Uri": {"/api/auth/ok"}}, 400, "", ""},
				{"two X-Forwarded-Uri", http.Header{"X-Forwarded-Uri": {"/api/auth/ok", "/api/v1/todos"}}, 400, "", ""},
				{"agreeing headers", http.Header{"X-Original-Url": {"https://app.example.com/api/v1/todos"}, "X-Forwarded-Uri": {"/api/v1/todos"},
					"Authorization": {"Bearer " + tok}}, 200, "u-verify", "v@example.com"},
				{"client method header against the ingress's", http.Header{"X-Forwarded-Uri": {"/api/v1/todos"}, "X-Original-Method": {"POST"},
					"X-Forwarded-Method": {"GET"}, "Cookie": {"better-auth.access_token=" + tok}, "Origin": {"https://evil.example"}}, 400, "", ""},
				// An escaped unreserved letter must not dodge a prefix.
				{"escaped letter in the prefix", http.Header{"X-Forwarded-Uri": {"/%61pi/v1/todos"}}, 400, "", ""},
			} {
				t.Run(tt.name, func(t *testing.T) {
					resp, body := verifyAsk(t, v.URL, tt.hdr)
					if resp.StatusCode != tt.want {
						t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
					}
					if u := resp.Header.Get("X-User-Id"); u != tt.user {
						t.Errorf("X-User-ID = %q, want %q", u, tt.user)
					}
					wantEmail := tt.hdr2
					if mode == "built-in" {
						wantEmail = "" // no identity mapping without a routes file
					}
					if e := resp.Header.Get("X-User-Email"); e != wantEmail {
						t.Errorf("X-User-Email = %q, want %q", e, wantEmail)
					}
					if tt.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
				})
			}
			// The application's own health paths are judged like any other
			// path, never answered with the proxy's own 200: with a bad
			// token the "/" optional route refuses (routes file), and
			// without WEB_URL there is nothing there (built-in).
			wantHealth := map[string]int{"built-in": 404, "routes file": 401}[mode]
			for _, p := range []string{"/healthz", "/readyz"} {
				resp, body := verifyAsk(t, v.URL, http.Header{"X-Forwarded-Uri": {p}, "Authorization": {"Bearer a.b.c"}})
				if resp.StatusCode != wantHealth {
					t.Errorf("judged path %s: %d %s, want %d (the application's path, not the proxy's health)", p, resp.StatusCode, body, wantHealth)
				}
			}
			// Without any URI header the request is judged at its own path,
			// as Envoy's ext_authz sends it.
			if resp, body := verifyAt(t, v.URL+"/api/v1/todos", nil); resp.StatusCode != 401 {
				t.Errorf("ext_authz style, no token: %d %s, want 401", resp.StatusCode, body)
			}
			if resp, body := verifyAt(t, v.URL+"/api/v1/todos", bearer(tok)); resp.StatusCode != 200 || resp.Header.Get("X-User-Id") != "u-verify" {
				t.Errorf("ext_authz style, token: %d %s, X-User-ID %q", resp.StatusCode, body, resp.Header.Get("X-User-Id"))
			}
			// Without a method header the request's own method is judged
			// (nginx's subrequest keeps the original one), never GET.
			req, _ := http.NewRequest("POST", v.URL+"/verify", nil)
			req.Header.Set("X-Original-Uri", "/api/v1/todos")
			req.Header.Set("Cookie", "better-auth.access_token="+tok)
			req.Header.Set("Origin", "https://evil.example")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Errorf("cookie POST without a method header: %d, want 403", resp.StatusCode)
			}
			// The sign-in limit applies as it does on the public listener.
			codes := []int{}
			for range 3 {
				resp, _ := verifyAsk(t, v.URL, http.Header{"X-Forwarded-Uri": {"/api/auth/sign-in/email"}, "X-Forwarded-Method": {"POST"}})
				codes = append(codes, resp.StatusCode)
			}
			if codes[2] != 429 {
				t.Errorf("sign-in verdicts %v, want the third to be 429", codes)
			}
			if n := h.backend.count() + h.authsvc.count(); n != 0 {
				t.Errorf("the verify listener forwarded %d requests", n)
			}
		})
	}
}

// nginxAuthConf puts nginx in front of an upstream with auth_request to the
// proxy's forward-auth listener, the way ingress-nginx's auth-url does.
// master_process off keeps it one process running as us (no privilege
// drop); every path is under its private prefix, and it listens only on
// the loopback port it is given.
const nginxAuthConf = `daemon off;
master_process off;
pid {{prefix}}/nginx.pid;
error_log {{prefix}}/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path {{prefix}}/body;
    proxy_temp_path {{prefix}}/proxy;
    fastcgi_temp_path {{prefix}}/fastcgi;
    uwsgi_temp_path {{prefix}}/uwsgi;
    scgi_temp_path {{prefix}}/scgi;
    server {
        listen {{listen}};
        location = /_gatehouse_verify {
            internal;
            proxy_pass http://{{verify}}/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header Host $http_host;
        }
        location / {
            auth_request /_gatehouse_verify;
            auth_request_set $gh_user $upstream_http_x_user_id;
            auth_request_set $gh_email $upstream_http_x_user_email;
            proxy_set_header X-User-ID $gh_user;
            proxy_set_header X-User-Email $gh_email;
            proxy_pass http://{{upstream}};
        }
    }
}
`

// startNginx runs nginx from Debian with nginxAuthConf on a free loopback
// port and returns its address; it is stopped when the test ends. A port
// taken between choosing and binding it is retried on another.
func startNginx(t *testing.T, verifyAddr, upstreamAddr string) string {
	t.Helper()
	if err := devenv.Install(devenv.TestPackages["bench"]...); err != nil {
		t.Fatalf("nginx is needed for the forward-auth test: %v", err)
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	for range 3 {
		if addr, ok := tryNginx(t, bin, verifyAddr, upstreamAddr); ok {
			return addr
		}
	}
	t.Fatal("nginx: no free port after 3 tries")
	return ""
}

// tryNginx starts nginx on one free port; ok is false when the port was
// taken meanwhile. Any other failure ends the test.
func tryNginx(t *testing.T, bin, verifyAddr, upstreamAddr string) (addr string, ok bool) {
	t.Helper()
	prefix := t.TempDir()
	listen := testenv.FreeAddr(t)
	conf := strings.NewReplacer("{{prefix}}", prefix, "{{listen}}", listen, "{{verify}}", verifyAddr, "{{upstream}}", upstreamAddr).Replace(nginxAuthConf)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			if strings.Contains(string(log)+out.String(), "Address already in use") {
				return "", false
			}
			t.Fatalf("nginx exited: %v\n%s%s", err, out, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, 100*time.Millisecond); err == nil {
			c.Close()
			return listen, true
		}
	}
	t.Fatal("nginx did not start listening within 10s")
	return "", false
}

// TestForwardAuthThroughNginx drives the forward-auth listener with nginx
// itself: auth_request to VERIFY_ADDR, identity headers copied onto the
// proxied request, exactly as an ingress deployment does.
func TestForwardAuthThroughNginx(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML(identityRoutes), env: map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"}})
	v := verifyServer(t, h)
	ngx := startNginx(t, strings.TrimPrefix(v.URL, "http://"), strings.TrimPrefix(h.backend.URL, "http://"))
	c := tokentest.Claims("u-nginx")
	c["email"] = "n@example.com"
	tok := h.keys["EdDSA"].Sign(t, c, nil)
	spoof := http.Header{"X-User-Id": {"root"}, "X-User-Email": {"root@example.com"}}
	for _, tt := range []struct {
		name, method, path string
		hdr                http.Header
		want               int
		user, email        string
		reached            bool
	}{
		{"no token", "GET", "/api/v1/todos", spoof, 401, "", "", false},
		{"bad token", "GET", "/api/v1/todos", http.Header{"Authorization": {"Bearer " + tok + "x"}, "X-User-Id": {"root"}}, 401, "", "", false},
		{"valid token, spoofed identity overwritten", "GET", "/api/v1/todos", http.Header{"Authorization": {"Bearer " + tok}, "X-User-Id": {"root"}, "X-User-Email": {"r@x"}}, 200, "u-nginx", "n@example.com", true},
		{"public route, spoofed identity dropped", "GET", "/public/page", spoof, 200, "", "", true},
		{"optional route without token", "GET", "/home", nil, 200, "", "", true},
		{"cookie POST from a foreign origin", "POST", "/api/v1/todos", http.Header{"Cookie": {"better-auth.access_token=" + tok}, "Origin": {"https://evil.example"}}, 403, "", "", false},
		{"cookie POST from its own origin", "POST", "/api/v1/todos", http.Header{"Cookie": {"better-auth.access_token=" + tok}, "Origin": {"http://" + ngx}}, 200, "u-nginx", "n@example.com", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := h.backend.count()
			req, _ := http.NewRequest(tt.method, "http://"+ngx+tt.path, nil)
			for k, vs := range tt.hdr {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, b)
			}
			if !tt.reached {
				if h.backend.count() != n {
					t.Error("a refused request reached the upstream")
				}
				return
			}
			got := h.backend.last(t).Header
			if u := got.Values("X-User-Id"); fmt.Sprint(u) != fmt.Sprint(nonEmpty(tt.user)) {
				t.Errorf("upstream X-User-ID = %q, want %q", u, nonEmpty(tt.user))
			}
			if e := got.Values("X-User-Email"); fmt.Sprint(e) != fmt.Sprint(nonEmpty(tt.email)) {
				t.Errorf("upstream X-User-Email = %q, want %q", e, nonEmpty(tt.email))
			}
		})
	}
	// A path nginx would normalise is judged as sent, and refused.
	n := h.backend.count()
	code, _ := rawRequest(t, ngx, "GET /public/../api/v1/todos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if code == 200 || h.backend.count() != n {
		t.Errorf("dot-segment path through nginx: status %d, forwarded %d; want refused", code, h.backend.count()-n)
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
