package e2e

// Helpers for the topology tests (issue 19): several proxies over one
// stack, sign-in load from one forwarded client address, and the time each
// proxy takes to refuse a signed-out session.

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// proxyReplica is one proxy process with its metrics listener.
type proxyReplica struct {
	URL, Metrics string
	Proc         *Proc
}

// moreProxies starts n more proxies like s.Proxy (same Redis, upstreams and
// settings), each with a metrics listener.
func moreProxies(t *testing.T, s *Stack, n int, env ...string) []proxyReplica {
	t.Helper()
	var out []proxyReplica
	for range n {
		m := testenv.FreeAddr(t)
		p := s.StartProxy(t, append([]string{"PROXY_METRICS_ADDR=" + m}, env...)...)
		out = append(out, proxyReplica{URL: "http://" + p.Addr, Metrics: m, Proc: p})
	}
	return out
}

func urls(ps []proxyReplica) []string {
	var u []string
	for _, p := range ps {
		u = append(u, p.URL)
	}
	return u
}

// signInVia posts a sign-in to proxy base as if from client address ip
// (the proxies trust 127.0.0.1's X-Forwarded-For).
func signInVia(c *http.Client, origin, base, ip, email, password string) (Resp, error) {
	return call(c, "POST", base+"/api/auth/sign-in/email", "",
		fmt.Sprintf(`{"email":%q,"password":%q}`, email, password),
		"Origin", origin, "X-Forwarded-For", ip)
}

// refusalLatency polls every proxy concurrently (every 5 ms) from `since`
// until each answers 401 to tok, and returns how long after `since` each one
// first refused; a proxy still accepting after limit gets -1.
func refusalLatency(t *testing.T, proxies []string, tok string, since time.Time, limit time.Duration) []time.Duration {
	t.Helper()
	c := httpClient(5*time.Second, 4)
	out := make([]time.Duration, len(proxies))
	var wg sync.WaitGroup
	for i, p := range proxies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := call(c, "GET", p+"/api/v1/todos", tok, "")
				if err == nil && r.Status == http.StatusUnauthorized {
					out[i] = time.Since(since)
					return
				}
				if time.Since(since) > limit {
					out[i] = -1
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return out
}

// requireRefusedWithin fails unless every proxy refused within d; it logs
// the per-proxy figures and returns the slowest.
func requireRefusedWithin(t *testing.T, what string, proxies []string, lat []time.Duration, d time.Duration) time.Duration {
	t.Helper()
	var worst time.Duration
	var parts []string
	for i, l := range lat {
		parts = append(parts, l.Round(time.Millisecond).String())
		if l < 0 || l > d {
			t.Errorf("%s: proxy %s still accepted the token %v after the sign-out (want refused within %v)", what, proxies[i], d, d)
		}
		worst = max(worst, l)
	}
	t.Logf("%s: refused by %d proxies after %s (per proxy)", what, len(proxies), strings.Join(parts, ", "))
	return worst
}

// signInLoad sends sign-ins, round-robin over proxies, from one client
// address as fast as `workers` goroutines manage, recording every answer
// with its time.
type signInLoad struct {
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers []loadAnswer
	errs    atomic.Int64
}

type loadAnswer struct {
	at     time.Time
	status int
}

func startSignInLoad(origin string, proxies []string, ip, email string, workers int, pause time.Duration) *signInLoad {
	l := &signInLoad{stop: make(chan struct{})}
	c := httpClient(10*time.Second, workers)
	var seq atomic.Int64
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				p := proxies[int(seq.Add(1))%len(proxies)]
				r, err := signInVia(c, origin, p, ip, email, pw)
				if err != nil {
					l.errs.Add(1)
				} else {
					l.mu.Lock()
					l.answers = append(l.answers, loadAnswer{time.Now(), r.Status})
					l.mu.Unlock()
				}
				time.Sleep(pause)
			}
		}()
	}
	return l
}

func (l *signInLoad) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// mustRefuseNow fails unless every proxy refuses every token at once.
func mustRefuseNow(t *testing.T, proxies []string, what string, toks ...string) {
	t.Helper()
	for _, p := range proxies {
		for i, tok := range toks {
			if r := bearerGet(t, p, "/api/v1/todos", tok); r.Status != http.StatusUnauthorized {
				t.Errorf("%s: token %d at %s: %s, want 401", what, i, p, r)
			}
		}
	}
}

// Between counts answers by status in [from, to).
func (l *signInLoad) Between(from, to time.Time) map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := map[int]int{}
	for _, a := range l.answers {
		if !a.at.Before(from) && a.at.Before(to) {
			n[a.status]++
		}
	}
	return n
}

func statusString(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", m[k], k))
	}
	return strings.Join(parts, " ")
}

// onRedis reports whether a proxy's limiter is on Redis and its revocation
// subscription is up, from its metrics.
func onRedis(addr string) (limiter, revocation bool) {
	m, err := scrape(addr)
	if err != nil {
		return false, false
	}
	return m[`proxy_rate_limit_backend{backend="redis"}`] == 1, m[`proxy_revocation_subscription_up`] == 1
}
