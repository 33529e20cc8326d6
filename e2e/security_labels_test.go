package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gatehouse.dev/kit/testenv"
)

// Every label that comes from a request comes from a closed set, in every
// service: 300 requests with invented methods (no token needed) must not
// add 300 series (issue 12). Unknown methods count as OTHER.
func TestSecurityMetricLabelsAreBounded(t *testing.T) {
	t.Parallel()
	addrs := map[string]string{
		"proxy": testenv.FreeAddr(t), "backend": testenv.FreeAddr(t),
		"authsvc": testenv.FreeAddr(t), "web": testenv.FreeAddr(t),
	}
	s := StartStack(t, Options{WithWeb: true,
		ProxyEnv:   []string{"PROXY_METRICS_ADDR=" + addrs["proxy"]},
		BackendEnv: []string{"BACKEND_METRICS_ADDR=" + addrs["backend"]},
		AuthEnv:    []string{"AUTHSVC_METRICS_ADDR=" + addrs["authsvc"]},
		WebEnv:     []string{"WEB_METRICS_ADDR=" + addrs["web"]},
	})
	rng := rand.New(rand.NewPCG(12, 0))
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	targets := []struct{ addr, path string }{
		{s.Proxy.Addr, "/api/v1/todos"}, {s.Proxy.Addr, "/api/auth/ok"}, {s.Proxy.Addr, "/"},
		{s.Backend.Addr, "/api/v1/todos"}, {s.Auth.Addr, "/api/auth/ok"}, {s.Web.Addr, "/"},
	}
	for i := range 300 {
		m := make([]byte, 6+rng.IntN(10))
		for j := range m {
			m[j] = letters[rng.IntN(len(letters))]
		}
		tg := targets[i%len(targets)]
		if r := rawGet(t, tg.addr, "M"+string(m), tg.path); r.Status >= 500 {
			t.Fatalf("invented method %s on %s%s: %s", m, tg.addr, tg.path, r)
		}
	}
	allowed := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
		"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true, "OTHER": true}
	for svc, addr := range addrs {
		series, err := scrape(addr)
		if err != nil {
			t.Fatalf("%s metrics: %v", svc, err)
		}
		methods := map[string]int{}
		for name := range series {
			if !strings.HasPrefix(name, svc+"_http_requests_total{") {
				continue
			}
			_, rest, _ := strings.Cut(name, `method="`)
			m, _, _ := strings.Cut(rest, `"`)
			methods[m]++
		}
		var bad []string
		for m := range methods {
			if !allowed[m] {
				bad = append(bad, m)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s: %d series with methods outside the closed set, e.g. %v", svc, len(bad), bad[:min(3, len(bad))])
		}
		if methods["OTHER"] == 0 {
			t.Errorf("%s: no series counts the invented methods as OTHER (methods seen: %v)", svc, fmt.Sprint(methods))
		}
	}
}
