package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// Sign-out and "sign out everywhere" take effect at every proxy within a
// second (issue part 1): two proxy replicas share one Redis, authsvc and
// backend; a proxy started later loads the revoked set; and a revocation
// made while Redis is down lands once it is back.
func TestAttackRevokedSessions(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	s := StartStack(t, Options{RecordBackend: true, SharedRedisURL: rd.URL()})
	metricsAddr := testenv.FreeAddr(t)
	p2 := s.StartProxy(t, "PROXY_METRICS_ADDR="+metricsAddr)
	proxies := []string{s.URL, "http://" + p2.Addr}

	// Sign-out through proxy 1.
	a := s.NewUser(t)
	a.SignUp("revoke-a@example.com", pw)
	ta := a.Token()
	mustAccept(t, proxies, ta, "a before sign-out")
	if r := a.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
		t.Fatalf("sign-out: %s", r)
	}
	mustRefuseWithin(t, s, proxies, time.Second, "a after sign-out", ta)

	// Sign out everywhere: two sessions of b; c is untouched.
	b1, b2, c := s.NewUser(t), s.NewUser(t), s.NewUser(t)
	b1.SignUp("revoke-b@example.com", pw)
	if r := b2.SignIn("revoke-b@example.com", pw); r.Status != http.StatusOK {
		t.Fatalf("b second sign-in: %s", r)
	}
	c.SignUp("revoke-c@example.com", pw)
	tb1, tb2, tc := b1.Token(), b2.Token(), c.Token()
	if claimsOf(t, tb1)["sid"] == claimsOf(t, tb2)["sid"] {
		t.Fatalf("b's two sign-ins share a sid")
	}
	mustAccept(t, proxies, tb1, "b1 before revoke-sessions")
	mustAccept(t, proxies, tb2, "b2 before revoke-sessions")
	if r := b1.Do("POST", "/api/auth/revoke-sessions", "{}"); r.Status != http.StatusOK {
		t.Fatalf("revoke-sessions: %s", r)
	}
	mustRefuseWithin(t, s, proxies, time.Second, "b after revoke-sessions", tb1, tb2)
	mustAccept(t, proxies, tc, "c, another user, after b's revoke-sessions")

	// A proxy started now loads the revoked set before it is ready.
	p3 := s.StartProxy(t)
	late := []string{"http://" + p3.Addr}
	mustRefuseWithin(t, s, late, 0, "revoked tokens at a proxy started later", ta, tb1, tb2)
	mustAccept(t, late, tc, "c at a proxy started later")

	// The refusals are counted with reason "revoked".
	if n := metricValue(t, metricsAddr, `proxy_auth_failures_total{reason="revoked"}`); n < 1 {
		t.Errorf(`proxy_auth_failures_total{reason="revoked"} = %v, want ≥ 1`, n)
	}

	// Redis down during sign-out: the token works until Redis is back
	// (residual risk, SECURITY.md), then every proxy refuses it.
	d := s.NewUser(t)
	d.SignUp("revoke-d@example.com", pw)
	td := d.Token()
	if err := rd.Stop(); err != nil {
		t.Fatalf("stop Redis: %v", err)
	}
	if r := d.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
		t.Errorf("sign-out with Redis down: %s (want 200: the session is deleted regardless)", r)
	}
	r := bearerGet(t, s.URL, "/api/v1/todos", td)
	t.Logf("token signed out while Redis is down: %d (accepted until Redis is back)", r.Status)
	if err := rd.Start(); err != nil {
		t.Fatalf("restart Redis: %v", err)
	}
	mustRefuseWithin(t, s, append(proxies, late...), 15*time.Second, "d after Redis came back", td)
	mustAccept(t, proxies, tc, "c after the Redis outage")
}

func mustAccept(t *testing.T, proxies []string, tok, what string) {
	t.Helper()
	for _, p := range proxies {
		if r := bearerGet(t, p, "/api/v1/todos", tok); r.Status != http.StatusOK {
			t.Errorf("%s at %s: %s, want 200", what, p, r)
		}
	}
}

// mustRefuseWithin polls every 50 ms until every proxy answers 401 to every
// token, failing if one is still accepted after d. Once refused, a token must
// stay refused, and the refused requests must not reach the backend.
func mustRefuseWithin(t *testing.T, s *Stack, proxies []string, d time.Duration, what string, toks ...string) {
	t.Helper()
	start := time.Now()
	for _, p := range proxies {
		for i, tok := range toks {
			for {
				m := marker(what)
				r := bearerGet(t, p, "/api/v1/todos?"+m, tok)
				if r.Status == http.StatusUnauthorized {
					s.Seen.AssertUnseen(t, what, r, m)
					break
				}
				if time.Since(start) > d {
					t.Errorf("%s: token %d still accepted at %s %v after revocation: %s", what, i, p, time.Since(start).Round(time.Millisecond), r)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	t.Logf("%s: refused by %d proxies after %v", what, len(proxies), time.Since(start).Round(time.Millisecond))
}

// metricValue reads one sample from a Prometheus text endpoint (0 if absent).
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Errorf("metrics: %v", err)
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
