package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Sign-in: no user enumeration by status or body (timing is reported, not
// asserted: two shared cores make it noisy), the per-account slow-down and
// the common-password refusal (issue part 2), and rotating client-IP headers
// does not escape the per-IP limit.
func TestAttackSignIn(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{RecordBackend: true, AuthEnv: []string{"SIGNIN_FREE_FAILURES=3", "SIGNIN_DELAY_BASE=300ms", "SIGNIN_DELAY_MAX=1s"}})
	known := s.NewUser(t)
	known.SignUp("known@example.com", pw)

	t.Run("enumeration", func(t *testing.T) {
		u := s.NewUser(t).SignIn("nobody@example.com", "wrong password 123")
		k := s.NewUser(t).SignIn("known@example.com", "wrong password 123")
		if u.Status != http.StatusUnauthorized || k.Status != u.Status || string(u.Body) != string(k.Body) || u.Code() != "INVALID_EMAIL_OR_PASSWORD" {
			t.Errorf("unknown email %s / wrong password %s: want identical 401 INVALID_EMAIL_OR_PASSWORD", u, k)
		}
		if hu, hk := headerNames(u.Header), headerNames(k.Header); !slices.Equal(hu, hk) {
			t.Errorf("header names differ: unknown %v, known %v", hu, hk)
		}
		// Timing: distinct accounts, each tried once, so the per-account
		// slow-down (which counts unknown emails too) does not skew it.
		var unknown, wrong []time.Duration
		for i := 0; i < 8; i++ {
			email := fmt.Sprintf("timing%d@example.com", i)
			s.NewUser(t).SignUp(email, pw)
			start := time.Now()
			s.NewUser(t).SignIn(email, "wrong password 123")
			wrong = append(wrong, time.Since(start))
			start = time.Now()
			s.NewUser(t).SignIn(fmt.Sprintf("ghost%d@example.com", i), "wrong password 123")
			unknown = append(unknown, time.Since(start))
		}
		t.Logf("sign-in timing, median of %d: unknown email %v, wrong password %v (argon2id at test cost; authsvc's own benchmark measures the production cost)",
			len(unknown), median(unknown), median(wrong))
	})

	t.Run("account slow-down", func(t *testing.T) {
		victim := "slow@example.com"
		s.NewUser(t).SignUp(victim, pw)
		var took []time.Duration
		for i := 0; i < 6; i++ {
			start := time.Now()
			r := s.NewUser(t).SignIn(victim, "wrong password 123")
			took = append(took, time.Since(start))
			if r.Status != http.StatusUnauthorized {
				t.Errorf("attempt %d: %s, want 401 (a delay, never a lock-out)", i+1, r)
			}
		}
		t.Logf("failed sign-ins for one account: %v", took)
		if took[4] < 250*time.Millisecond || took[5] < 250*time.Millisecond {
			t.Errorf("attempts 5 and 6 after 3 free failures took %v and %v, want ≥ 300ms delays", took[4], took[5])
		}
		// Another account is not slowed by the victim's failures.
		start := time.Now()
		s.NewUser(t).SignIn("known@example.com", "wrong password 123")
		if d := time.Since(start); d > took[5] && d > 250*time.Millisecond {
			t.Errorf("another account's attempt took %v: slowed by someone else's failures", d)
		}
		// The right password still works (after the delay) and resets it.
		if r := s.NewUser(t).SignIn(victim, pw); r.Status != http.StatusOK {
			t.Errorf("right password after failures: %s, want 200 (no lock-out)", r)
		}
		start = time.Now()
		s.NewUser(t).SignIn(victim, "wrong password 123")
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("first failure after a success took %v: the count was not reset", d)
		}
	})

	t.Run("common passwords", func(t *testing.T) {
		for _, p := range []string{"password", "password123", "qwertyuiop", "PASSWORD123"} {
			r := s.NewUser(t).Do("POST", "/api/auth/sign-up/email", fmt.Sprintf(`{"name":"c","email":"common-%d@example.com","password":%q}`, len(p), p))
			if p == "PASSWORD123" {
				t.Logf("sign-up with %q: %s", p, r)
				continue
			}
			if r.Status != http.StatusBadRequest || r.Code() != "PASSWORD_COMPROMISED" {
				t.Errorf("sign-up with %q: %s, want 400 PASSWORD_COMPROMISED", p, r)
			}
		}
	})
	if len(s.Seen.Requests()) != 0 {
		t.Errorf("sign-in traffic reached the backend: %v", s.Seen.Requests())
	}
}

// Rotating every client-address header does not reset the per-IP sign-in
// limit when the peer is not a trusted proxy; behind a trusted proxy,
// rotating the entries the client itself wrote does not either.
func TestAttackForwardedForRotation(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{AuthRateLimit: "3/m"})
	try := func(i int, lines ...string) Resp {
		return rawReq(t, hostOf(s.URL), "POST", "/api/auth/sign-in/email", `{"email":"x@example.com","password":"wrong password 123"}`,
			append([]string{"Content-Type: application/json", "Origin: " + s.URL}, lines...)...)
	}
	limited := 0
	for i := 0; i < 8; i++ {
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		r := try(i, "X-Forwarded-For: "+ip, "X-Real-IP: "+ip, "Forwarded: for="+ip, "True-Client-IP: "+ip,
			"CF-Connecting-IP: "+ip, "X-Client-IP: "+ip, "X-Forwarded-For: "+ip+", "+ip)
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 5 {
		t.Errorf("8 sign-ins from one peer with rotating X-Forwarded-For etc.: %d limited, want ≥ 5 (limit 3/m)", limited)
	}

	// Behind a trusted proxy (the ingress appends the address it saw): a
	// second proxy replica that trusts loopback, sharing the limiter's Redis.
	p2 := s.StartProxy(t, "TRUSTED_PROXIES=127.0.0.1")
	limited = 0
	for i := 0; i < 8; i++ {
		r := rawReq(t, p2.Addr, "POST", "/api/auth/sign-in/email", `{"email":"x@example.com","password":"wrong password 123"}`,
			"Content-Type: application/json", "Origin: "+s.URL, fmt.Sprintf("X-Forwarded-For: 198.51.100.%d, 203.0.113.9", i+1))
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 5 {
		t.Errorf("8 sign-ins via a trusted proxy for one real client, rotating the client-written entries: %d limited, want ≥ 5", limited)
	}
}

func headerNames(h http.Header) []string {
	var out []string
	for k := range h {
		if k != "Date" && k != "X-Request-Id" && k != "Content-Length" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// Security headers (issue part 3) on what the proxy answers: nosniff and a
// Referrer-Policy everywhere, no-store on auth responses, a strict CSP with
// frame-ancestors 'none' on the demo, and HSTS only when a trusted proxy says
// the request was https.
func TestAttackSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{WithWeb: true, ProxyEnv: []string{"TRUSTED_PROXIES=127.0.0.1"}})
	u := s.NewUser(t)
	u.SignUp("headers@example.com", pw)
	tok := u.Token()
	check := func(name string, r Resp, want map[string]string) {
		t.Helper()
		for k, v := range want {
			got := r.Header.Get(k)
			if v == "" && got != "" {
				t.Errorf("%s: %s = %q, want none", name, k, got)
			} else if v != "" && !strings.Contains(strings.ToLower(got), strings.ToLower(v)) {
				t.Errorf("%s: %s = %q, want it to contain %q", name, k, got, v)
			}
		}
	}
	referrer := func(name string, r Resp) {
		t.Helper()
		if p := r.Header.Get("Referrer-Policy"); p == "" || p == "unsafe-url" || p == "no-referrer-when-downgrade" {
			t.Errorf("%s: Referrer-Policy %q, want a policy that does not leak paths cross-origin", name, p)
		}
	}
	for _, c := range []struct {
		name string
		r    Resp
		want map[string]string
	}{
		{"sign-in", u.SignIn("headers@example.com", pw), map[string]string{"Cache-Control": "no-store"}},
		{"get-session", u.Do("GET", "/api/auth/get-session", ""), map[string]string{"Cache-Control": "no-store"}},
		{"token", u.Do("GET", "/api/auth/token", ""), map[string]string{"Cache-Control": "no-store"}},
		{"auth error", s.NewUser(t).SignIn("nobody@example.com", "wrong password 123"), map[string]string{"Cache-Control": "no-store"}},
		{"api 200", bearerGet(t, s.URL, "/api/v1/todos", tok), nil},
		{"api 401", bearerGet(t, s.URL, "/api/v1/todos", ""), nil},
		{"bad path 400", rawGet(t, hostOf(s.URL), "GET", "/api/%2e%2e/x"), nil},
		{"demo page", bearerGet(t, s.URL, "/", ""), map[string]string{"Content-Security-Policy": "frame-ancestors 'none'"}},
		{"http: no HSTS", bearerGet(t, s.URL, "/", ""), map[string]string{"Strict-Transport-Security": ""}},
		{"https via a trusted proxy: HSTS", bearerGet(t, s.URL, "/", "", "X-Forwarded-Proto", "https"), map[string]string{"Strict-Transport-Security": "max-age="}},
	} {
		check(c.name, c.r, map[string]string{"X-Content-Type-Options": "nosniff"})
		referrer(c.name, c.r)
		check(c.name, c.r, c.want)
	}
	if csp := bearerGet(t, s.URL, "/", "").Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "default-src") {
		t.Errorf("demo CSP %q: want default-src and no unsafe-inline/unsafe-eval", csp)
	}
	// An untrusted peer cannot claim https to get HSTS pinned on a host.
	p2 := s.StartProxy(t, "TRUSTED_PROXIES=")
	if r := bearerGet(t, "http://"+p2.Addr, "/api/auth/ok", "", "X-Forwarded-Proto", "https"); r.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS sent for an untrusted peer's X-Forwarded-Proto: %q", r.Header.Get("Strict-Transport-Security"))
	}
}
