package e2e

// The stack on Redis beyond one server (issue 19): TLS, six proxies on one
// Redis, Sentinel with a failover under load, and Redis Cluster with a node
// restart. Every server is a real Debian redis-server / redis-sentinel on a
// free loopback port.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// rediss:// with a CA made by the test: sign-in limits live in the TLS
// Redis and a sign-out reaches the proxy through it.
func TestTopologyTLSRedis(t *testing.T) {
	t.Parallel()
	rd, files := testenv.NewTLSRedis(t)
	ca := "REDIS_CA_FILE=" + files.CAFile
	s := StartStack(t, Options{SharedRedisURL: "rediss://" + rd.Addr() + "/0",
		AuthEnv: []string{ca}, ProxyEnv: []string{ca}})
	ps := append([]proxyReplica{{URL: s.URL}}, moreProxies(t, s, 1)...)
	if lim, rev := onRedis(ps[1].Metrics); !lim || !rev {
		t.Fatalf("proxy over rediss://: limiter on Redis %v, revocation subscription up %v; want both", lim, rev)
	}
	u := s.NewUser(t)
	u.SignUp("tls@example.com", pw)
	tok := u.Token()
	mustAccept(t, urls(ps), tok, "before sign-out")
	t0 := time.Now()
	if r := u.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
		t.Fatalf("sign-out: %s", r)
	}
	requireRefusedWithin(t, "sign-out over rediss://", urls(ps), refusalLatency(t, urls(ps), tok, t0, 5*time.Second), time.Second)

}

// Six proxies share one Redis: the per-address sign-in limit holds across
// all six together, and a sign-out is refused by all six within a second.
func TestTopologySixProxies(t *testing.T) {
	t.Parallel()
	rd := testenv.NewRedis(t)
	s := StartStack(t, Options{SharedRedisURL: rd.URL(), AuthRateLimit: "10/m",
		ProxyEnv: []string{"TRUSTED_PROXIES=127.0.0.1/32"}})
	ps := append([]proxyReplica{{URL: s.URL}}, moreProxies(t, s, 5)...)
	all := urls(ps)
	u := s.NewUser(t)
	u.SignUp("six@example.com", pw)

	// 36 sign-ins from one address: six rounds, each sending one to every
	// proxy at once.
	c := httpClient(10*time.Second, 36)
	counts := map[int]int{}
	start := time.Now()
	for range 6 {
		out := make(chan int, 6)
		for _, p := range all {
			go func() {
				r, err := signInVia(c, s.URL, p, "203.0.113.9", "six@example.com", pw)
				if err != nil {
					t.Errorf("sign-in via %s: %v", p, err)
				}
				out <- r.Status
			}()
		}
		for range 6 {
			counts[<-out]++
		}
	}
	elapsed := time.Since(start)
	// GCRA with a burst of 10 and one more every 6 s.
	wantMax := 10 + int(elapsed/(6*time.Second))
	allowed := 36 - counts[http.StatusTooManyRequests]
	t.Logf("36 sign-ins from one address over 6 proxies in %v: %s (limit 10/m shared)", elapsed.Round(time.Millisecond), statusString(counts))
	if allowed < 10 || allowed > wantMax {
		t.Errorf("allowed %d sign-ins across six proxies, want 10 (the shared limit; %d if each proxy limited alone)", allowed, 60)
	}
	if counts[http.StatusOK] != allowed {
		t.Errorf("allowed sign-ins answered %s, want every allowed one 200", statusString(counts))
	}

	// A sign-out through proxy 1 reaches all six; twice, for the figures.
	for round := range 2 {
		v := s.NewUser(t)
		if r := v.SignIn("six@example.com", pw); r.Status != http.StatusOK {
			t.Fatalf("sign-in: %s", r)
		}
		tok := v.Token()
		mustAccept(t, all, tok, "before sign-out")
		t0 := time.Now()
		if r := v.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
			t.Fatalf("sign-out: %s", r)
		}
		requireRefusedWithin(t, "sign-out "+string(rune('A'+round))+" at six proxies", all,
			refusalLatency(t, all, tok, t0, 5*time.Second), time.Second)
	}
}

// Sentinel (one master, one replica, three sentinels, down-after 1 s): the
// master is killed under sign-in load from one address spread over three
// proxies. The limiter keeps limiting (in process while the master is
// gone, in Redis again after the switch), sign-outs made before, during and
// after the failover are refused by every proxy, and a proxy started after
// it loads them from the new master.
func TestTopologySentinelFailover(t *testing.T) {
	t.Parallel()
	g := testenv.NewSentinelGroup(t, time.Second)
	m1 := testenv.FreeAddr(t)
	s := StartStack(t, Options{SharedRedisURL: g.URL(), AuthRateLimit: "20/s",
		ProxyEnv: []string{"TRUSTED_PROXIES=127.0.0.1/32", "PROXY_METRICS_ADDR=" + m1}})
	ps := append([]proxyReplica{{URL: s.URL, Metrics: m1}}, moreProxies(t, s, 2)...)
	all := urls(ps)
	for _, p := range ps {
		if lim, rev := onRedis(p.Metrics); !lim || !rev {
			t.Fatalf("proxy %s over Sentinel: limiter on Redis %v, revocation subscription up %v; want both", p.URL, lim, rev)
		}
	}
	users := map[string]*User{}
	toks := map[string]string{}
	for _, n := range []string{"before", "during", "after", "kept"} {
		u := s.NewUser(t)
		u.SignUp("sentinel-"+n+"@example.com", pw)
		users[n], toks[n] = u, u.Token()
	}
	signOut := func(n string) time.Time {
		t0 := time.Now()
		if r := users[n].Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
			t.Fatalf("sign-out %s: %s", n, r)
		}
		return t0
	}

	load := startSignInLoad(s.URL, all, "198.51.100.7", "sentinel-kept@example.com", 4, 10*time.Millisecond)
	defer load.Stop()
	time.Sleep(2 * time.Second)
	steadyFrom := time.Now().Add(-time.Second)
	t0 := signOut("before")
	requireRefusedWithin(t, "sign-out before the failover", all, refusalLatency(t, all, toks["before"], t0, 5*time.Second), time.Second)
	steady := load.Between(steadyFrom, time.Now())

	old := g.Master.Addr()
	kill := time.Now()
	g.Master.Kill()
	tDuring := signOut("during")

	// Failover: the sentinels name another master.
	var switched time.Duration
	if d, ok := pollUntil(30*time.Second, 20*time.Millisecond, func() bool {
		a, err := g.CurrentMaster()
		return err == nil && a != old
	}); ok {
		switched = d
	} else {
		t.Fatalf("sentinels did not fail over within 30s")
	}
	// Every proxy back on Redis: limiter and revocation subscription.
	_, ok := pollUntil(30*time.Second, 20*time.Millisecond, func() bool {
		for _, p := range ps {
			if lim, rev := onRedis(p.Metrics); !lim || !rev {
				return false
			}
		}
		return true
	})
	if !ok {
		for _, p := range ps {
			lim, rev := onRedis(p.Metrics)
			t.Errorf("proxy %s 30s after the kill: limiter on Redis %v, revocation subscription up %v", p.URL, lim, rev)
		}
	}
	backAt := time.Now()
	recovered := backAt.Sub(kill)
	meanwhile := load.Between(kill, backAt)
	lat := refusalLatency(t, all, toks["during"], tDuring, 20*time.Second)
	requireRefusedWithin(t, "sign-out made while the master was down", all, lat, 20*time.Second)

	t1 := signOut("after")
	requireRefusedWithin(t, "sign-out after the failover", all, refusalLatency(t, all, toks["after"], t1, 5*time.Second), time.Second)
	time.Sleep(time.Second)
	after := load.Between(time.Now().Add(-time.Second), time.Now())
	load.Stop()

	late := moreProxies(t, s, 1)
	mustRefuseNow(t, urls(late), "signed-out sessions at a proxy started after the failover",
		toks["before"], toks["during"], toks["after"])
	mustAccept(t, append(all, urls(late)...), toks["kept"], "a session never signed out")

	t.Logf("Sentinel failover: master killed; sentinels switched after %v; every proxy's limiter and subscription back on Redis %v after the kill; "+
		"sign-ins answered meanwhile: %s; transport errors %d",
		switched.Round(time.Millisecond), recovered.Round(time.Millisecond), statusString(meanwhile), load.errs.Load())
	t.Logf("sign-ins in the second before the failover: %s; in the last second after: %s (limit 20/s from one address, shared)",
		statusString(steady), statusString(after))

	// Limiting held throughout: 429s before and after (the load is well
	// above the shared limit there); meanwhile each proxy limits in
	// process, so at most 20/s per proxy (plus a burst) is let through.
	// Whether meanwhile also shows 429s depends on how fast the load runs
	// while allowed sign-ins hash passwords (on a loaded machine it may
	// not reach 20/s per proxy), so the bound, not a 429, is the check.
	ceiling := len(ps) * 20 * (int(recovered/time.Second) + 2)
	if n := meanwhile[http.StatusOK]; n > ceiling {
		t.Errorf("meanwhile the failover: %d sign-ins allowed in %v, above %d (20/s per proxy, in process): the limiter stopped limiting", n, recovered, ceiling)
	}
	for name, m := range map[string]map[int]int{"before": steady, "meanwhile": meanwhile, "after": after} {
		if name != "meanwhile" && m[http.StatusTooManyRequests] == 0 {
			t.Errorf("%s the failover: no sign-in refused with 429 (%s): the limiter stopped limiting", name, statusString(m))
		}
		for st, n := range m {
			if st >= 500 {
				t.Errorf("%s the failover: %d sign-ins answered %d", name, n, st)
			}
		}
	}
	if n := load.errs.Load(); n > 0 {
		t.Errorf("%d sign-ins got no answer at all", n)
	}
	// Shared limit again after the switch: at most one second's worth
	// (20) plus the burst (20) got through in the last second across
	// three proxies; three separate in-process limits would allow 120.
	if ok := after[http.StatusOK]; ok > 40 {
		t.Errorf("after the failover %d sign-ins allowed in one second from one address, want ≤ 40 (limit shared in Redis)", ok)
	}
	if !strings.Contains(s.Proxy.Logs(), "Redis is back") {
		t.Errorf("proxy did not log its limiter's return to Redis")
	}
}

// Redis Cluster of three masters. The prefix is chosen so that authsvc's
// revoked-session key and the revocation channel live on different nodes:
// authsvc publishes on the key's node, every proxy subscribes on the
// channel's, and Redis Cluster carries the message across. Rate-limit keys
// of twelve client addresses spread over the nodes, each limited exactly.
// Each of those two nodes is restarted in turn: a sign-out made while one is
// down is refused once it is back, and every proxy returns to Redis.
func TestTopologyRedisCluster(t *testing.T) {
	t.Parallel()
	c := testenv.NewRedisCluster(t, 3)
	var prefix string
	var keyNode, chNode *devenv.Redis
	for i := range 64 {
		p := fmt.Sprintf("gh%d:", i)
		keyNode, chNode = clusterOwner(t, c, p+"revoked_sids"), clusterOwner(t, c, p+"revocations")
		if keyNode != chNode {
			prefix = p
			break
		}
	}
	if prefix == "" {
		t.Fatal("no prefix puts the revoked set and the channel on different nodes")
	}
	m1 := testenv.FreeAddr(t)
	s := StartStack(t, Options{SharedRedisURL: c.URL(), AuthRateLimit: "5/m",
		AuthEnv:  []string{"REDIS_PREFIX=" + prefix},
		ProxyEnv: []string{"REDIS_PREFIX=" + prefix, "TRUSTED_PROXIES=127.0.0.1/32", "PROXY_METRICS_ADDR=" + m1}})
	ps := append([]proxyReplica{{URL: s.URL, Metrics: m1}}, moreProxies(t, s, 2)...)
	all := urls(ps)
	t.Logf("revoked set on %s, channel on %s", keyNode.Addr(), chNode.Addr())
	for _, p := range ps {
		if lim, rev := onRedis(p.Metrics); !lim || !rev {
			t.Fatalf("proxy %s over Cluster: limiter on Redis %v, revocation subscription up %v; want both", p.URL, lim, rev)
		}
	}
	u := s.NewUser(t)
	u.SignUp("cluster@example.com", pw)

	// Seven sign-ins from each of twelve addresses over three proxies:
	// exactly five allowed per address. First one request per proxy from
	// another address, and every limiter on Redis: a limiter that fell back
	// in process (a call slower than its 100 ms on a loaded machine) would
	// count apart until its next health check.
	hc := httpClient(10*time.Second, 12)
	for _, p := range all {
		if _, err := signInVia(hc, s.URL, p, "10.18.0.1", "cluster@example.com", pw); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := pollUntil(10*time.Second, 20*time.Millisecond, func() bool {
		for _, p := range ps {
			if lim, _ := onRedis(p.Metrics); !lim {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatal("limiters not on Redis Cluster 10s after the first requests")
	}
	for i := range 12 {
		ip := fmt.Sprintf("10.19.0.%d", i+1)
		allowed := 0
		for j := range 7 {
			r, err := signInVia(hc, s.URL, all[j%3], ip, "cluster@example.com", pw)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusTooManyRequests {
				allowed++
			}
		}
		if allowed != 5 {
			t.Errorf("address %s: %d of 7 sign-ins allowed over three proxies, want 5 (limit 5/m shared)", ip, allowed)
		}
	}
	var spread []string
	holding := 0
	for _, n := range c.Nodes {
		out, err := n.CLI("--scan", "--pattern", "rate:*")
		if err != nil {
			t.Fatal(err)
		}
		k := len(strings.Fields(out))
		spread = append(spread, fmt.Sprintf("%s: %d", n.Addr(), k))
		if k > 0 {
			holding++
		}
	}
	t.Logf("rate-limit keys per node: %s", strings.Join(spread, ", "))
	if holding < 2 {
		t.Errorf("rate-limit keys on %d node(s), want them spread over the cluster", holding)
	}

	// Each session below signs in from its own address, clear of the
	// 5/m limit.
	seq := 0
	signIn := func() *User {
		seq++
		v := s.NewUser(t)
		v.Email = "cluster@example.com"
		if r := v.Do("POST", "/api/auth/sign-in/email", fmt.Sprintf(`{"email":%q,"password":%q}`, v.Email, pw),
			"X-Forwarded-For", fmt.Sprintf("10.20.0.%d", seq)); r.Status != http.StatusOK {
			t.Fatalf("sign-in: %s", r)
		}
		return v
	}
	signOut := func(what string) (string, time.Time) {
		v := signIn()
		tok := v.Token()
		t0 := time.Now()
		if r := v.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
			t.Fatalf("sign-out %s: %s", what, r)
		}
		return tok, t0
	}
	tok, t0 := signOut("first")
	requireRefusedWithin(t, "sign-out over Cluster", all, refusalLatency(t, all, tok, t0, 5*time.Second), time.Second)

	for _, n := range []*devenv.Redis{chNode, keyNode} {
		v := signIn()
		tok := v.Token()
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		if r := v.Do("POST", "/api/auth/sign-out", "{}"); r.Status != http.StatusOK {
			t.Errorf("sign-out with node %s down: %s, want 200", n.Addr(), r)
		}
		time.Sleep(time.Second)
		if err := n.Start(); err != nil {
			t.Fatalf("restart node %s: %v", n.Addr(), err)
		}
		if err := c.WaitOK(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		lat := refusalLatency(t, all, tok, down, 20*time.Second)
		requireRefusedWithin(t, "sign-out while node "+n.Addr()+" was restarting", all, lat, 20*time.Second)
		back, ok := pollUntil(20*time.Second, 20*time.Millisecond, func() bool {
			for _, p := range ps {
				if lim, rev := onRedis(p.Metrics); !lim || !rev {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Errorf("proxies not back on Redis 20s after node %s restarted", n.Addr())
		}
		_ = back
		t.Logf("node %s stopped for 1s and restarted: every proxy back on Redis %v after the stop",
			n.Addr(), time.Since(down).Round(time.Millisecond))
		tok, t0 := signOut("after restart")
		requireRefusedWithin(t, "sign-out after node "+n.Addr()+" restarted", all, refusalLatency(t, all, tok, t0, 5*time.Second), time.Second)
	}
}

// clusterOwner is the node serving key's slot.
func clusterOwner(t *testing.T, c *devenv.RedisCluster, key string) *devenv.Redis {
	t.Helper()
	out, err := c.Nodes[0].CLI("CLUSTER", "KEYSLOT", key)
	if err != nil {
		t.Fatal(err)
	}
	slot, _ := strconv.Atoi(strings.TrimSpace(out))
	nodes, err := c.Nodes[0].CLI("CLUSTER", "NODES")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, rg := range f[8:] {
			lo, hi, found := strings.Cut(rg, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if found {
				b, _ = strconv.Atoi(hi)
			}
			if slot >= a && slot <= b {
				for _, n := range c.Nodes {
					if n.Addr() == addr {
						return n
					}
				}
			}
		}
	}
	t.Fatalf("no node serves slot %d of %s", slot, key)
	return nil
}
