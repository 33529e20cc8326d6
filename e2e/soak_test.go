package e2e

// The load soak (make soak): mixed traffic at the highest rate the machine
// sustains, for GATEHOUSE_SOAK (e.g. 10m). Zero 5xx, zero lost writes,
// memory and goroutines flat after warm-up, latency percentiles logged.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

type soakStats struct {
	mu    sync.Mutex
	lat   map[string][]time.Duration
	codes map[string]map[int]int
	fails []string
}

func (s *soakStats) add(op string, st int, d time.Duration, unexpected string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat[op] = append(s.lat[op], d)
	if s.codes[op] == nil {
		s.codes[op] = map[int]int{}
	}
	s.codes[op][st]++
	if unexpected != "" && len(s.fails) < 50 {
		s.fails = append(s.fails, op+": "+unexpected)
	}
}

type procSample struct{ rssKiB, goroutines int }

func TestSoak(t *testing.T) {
	spec := os.Getenv("GATEHOUSE_SOAK")
	if spec == "" {
		t.Skip("load soak: set GATEHOUSE_SOAK to a duration (e.g. GATEHOUSE_SOAK=10m, as make soak does) to run it")
	}
	dur, err := time.ParseDuration(spec)
	if err != nil || dur < 10*time.Second {
		t.Fatalf("GATEHOUSE_SOAK=%q: want a duration of at least 10s, like 10m", spec)
	}
	metrics := map[string]string{}
	env := func(svc, v string) []string {
		metrics[svc] = testenv.FreeAddr(t)
		return []string{v + "=" + metrics[svc]}
	}
	s := StartStack(t, Options{WithWeb: true, AuthRateLimit: "1000000/m",
		ProxyEnv:   append(env("proxy", "PROXY_METRICS_ADDR"), "AUTH_GENERAL_RATE_LIMIT=1000000/m"),
		BackendEnv: env("backend", "BACKEND_METRICS_ADDR"), AuthEnv: env("authsvc", "AUTHSVC_METRICS_ADDR"),
		WebEnv: env("web", "WEB_METRICS_ADDR")})
	procs := []*Proc{s.Proxy, s.Backend, s.Auth, s.Web}
	sample := func() map[string]procSample {
		out := map[string]procSample{}
		for _, p := range procs {
			g, _ := scrape(metrics[p.Name])
			out[p.Name] = procSample{rssKiB(p.Pid()), int(g["go_goroutines"])}
		}
		return out
	}

	const workers = 16
	st := &soakStats{lat: map[string][]time.Duration{}, codes: map[string]map[int]int{}}
	c := httpClient(30*time.Second, workers*2)
	models := make([]map[int64]Todo, workers)
	bearers := make([]string, workers)
	emails := make([]string, workers)
	for w := range workers {
		emails[w] = fmt.Sprintf("soak%d@example.com", w)
		bearers[w] = signedUpBearer(t, s, emails[w])
		models[w] = map[int64]Todo{}
	}

	warmup := min(dur/5, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var start map[string]procSample
	go func() {
		time.Sleep(warmup)
		start = sample()
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			model, bearer := models[w], bearers[w]
			ids := func() []int64 {
				var out []int64
				for id := range model {
					out = append(out, id)
				}
				return out
			}
			for n := 0; ctx.Err() == nil && n < 10_000_000; n++ {
				op := []string{"list", "list", "list", "create", "create", "update", "delete", "invalid", "signin"}[rng.Intn(9)]
				if (op == "update" || op == "delete") && len(model) == 0 {
					op = "create"
				}
				if op == "create" && len(model) > 200 {
					op = "delete"
				}
				var r Resp
				var err error
				want := http.StatusOK
				t0 := time.Now()
				switch op {
				case "list":
					r, err = call(c, "GET", s.URL+"/api/v1/todos?limit=20", bearer, "")
				case "create":
					want = http.StatusCreated
					r, err = call(c, "POST", s.URL+"/api/v1/todos", bearer, fmt.Sprintf(`{"title":"s-%d-%d"}`, w, n))
				case "update":
					id := ids()[rng.Intn(len(model))]
					r, err = call(c, "PATCH", fmt.Sprintf("%s/api/v1/todos/%d", s.URL, id), bearer, `{"completed":true}`)
				case "delete":
					want = http.StatusNoContent
					id := ids()[rng.Intn(len(model))]
					r, err = call(c, "DELETE", fmt.Sprintf("%s/api/v1/todos/%d", s.URL, id), bearer, "")
					if err == nil && r.Status == want {
						delete(model, id)
					}
				case "invalid":
					want = http.StatusUnauthorized
					r, err = call(c, "GET", s.URL+"/api/v1/todos", bearer[:len(bearer)-4]+"AAAA", "")
				case "signin":
					r, err = call(c, "POST", s.URL+"/api/auth/sign-in/email", "", fmt.Sprintf(`{"email":%q,"password":%q}`, emails[w], pw), "Origin", s.URL)
				}
				d := time.Since(t0)
				unexpected := ""
				if err != nil {
					unexpected = err.Error()
				} else if r.Status != want {
					unexpected = r.String()
				}
				if err == nil && r.Status == want && (op == "create" || op == "update") {
					var td Todo
					if json.Unmarshal(r.Body, &td) == nil {
						model[td.ID] = td
					}
				}
				st.add(op, r.Status, d, unexpected)
			}
		}(w)
	}
	wg.Wait()
	end := sample()

	// Lost writes: every user's stored todos are exactly its model.
	lost, extra := 0, 0
	for w := range workers {
		stored := map[int64]Todo{}
		for _, td := range allTodos(t, s.URL, bearers[w]) {
			stored[td.ID] = td
		}
		for id, td := range models[w] {
			if got, ok := stored[id]; !ok || got.Title != td.Title || got.Completed != td.Completed {
				lost++
			}
		}
		for id := range stored {
			if _, ok := models[w][id]; !ok {
				extra++
			}
		}
	}

	var b strings.Builder
	total := 0
	fmt.Fprintf(&b, "\n%-8s %8s %9s %9s %9s %9s  %s\n", "op", "count", "p50", "p90", "p99", "max", "statuses")
	for _, op := range []string{"list", "create", "update", "delete", "invalid", "signin"} {
		l := st.lat[op]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		if len(l) == 0 {
			continue
		}
		total += len(l)
		q := func(p float64) time.Duration {
			return l[min(len(l)-1, int(p*float64(len(l))))].Round(10 * time.Microsecond)
		}
		fmt.Fprintf(&b, "%-8s %8d %9v %9v %9v %9v  %v\n", op, len(l), q(.5), q(.9), q(.99), l[len(l)-1].Round(10*time.Microsecond), st.codes[op])
	}
	t.Logf("soak %v, %d workers: %d requests, %.0f req/s%s", dur, workers, total, float64(total)/dur.Seconds(), b.String())
	for _, p := range procs {
		t.Logf("%-8s RSS %6d KiB → %6d KiB   goroutines %4d → %4d   (after %v warm-up → end)", p.Name,
			start[p.Name].rssKiB, end[p.Name].rssKiB, start[p.Name].goroutines, end[p.Name].goroutines, warmup)
	}
	t.Logf("writes: %d todos expected at the end, %d lost or changed, %d unexpected", func() (n int) {
		for _, m := range models {
			n += len(m)
		}
		return
	}(), lost, extra)

	for _, f := range st.fails {
		t.Errorf("unexpected answer: %s", f)
	}
	for op, m := range st.codes {
		for code, n := range m {
			if code >= 500 || code == 0 {
				t.Errorf("%s: %d answers with status %d (0: transport error)", op, n, code)
			}
		}
	}
	if lost+extra > 0 {
		t.Errorf("%d acknowledged writes lost or changed, %d todos nobody acknowledged", lost, extra)
	}
	for _, p := range procs {
		a, z := start[p.Name], end[p.Name]
		// Flat: generous bounds, for GC timing and pool sizes on a loaded VM.
		if z.goroutines > a.goroutines*3/2+20 {
			t.Errorf("%s goroutines grew from %d to %d after warm-up", p.Name, a.goroutines, z.goroutines)
		}
		if z.rssKiB > a.rssKiB*3/2+16<<10 {
			t.Errorf("%s RSS grew from %d KiB to %d KiB after warm-up", p.Name, a.rssKiB, z.rssKiB)
		}
		if !p.Alive() {
			t.Errorf("%s exited", p.Name)
		}
	}
}
